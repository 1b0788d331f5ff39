"""A collector stub for benchmarks: receives OTLP/HTTP traces on 127.0.0.1, decodes and counts.

``python -m bench.otlp_stub --port 4318`` (``bench/load.py --otlp-stub`` starts one itself).
It decodes every request as a collector would (``tests/support/otlp.py``) and prints, every
``--every`` seconds, how many requests and spans arrived, so a run shows the export happened.
"""

from __future__ import annotations

import argparse
import time

from tests.support.otlp import otlp_receiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between counts")
    args = parser.parse_args()
    with otlp_receiver(port=args.port, keep=False) as receiver:
        print(f"otlp stub on {receiver.endpoint}", flush=True)
        while True:
            time.sleep(args.every)
            print(f"requests={receiver.requests} spans={receiver.span_count}", flush=True)


if __name__ == "__main__":
    main()

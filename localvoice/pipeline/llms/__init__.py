"""The bundled chat models: prompt format, sampling policy and weights of each."""

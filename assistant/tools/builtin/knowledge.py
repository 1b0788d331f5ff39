"""Search the profile's knowledge bases with the database's own full-text search.

PostgreSQL: ``websearch_to_tsquery`` ranked with ``ts_rank``. SQLite: an FTS5 index kept by
triggers (migration ``0005``), ranked with ``bm25``. Answers cite the document's title.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.db import connection

from assistant.tools.builtin.tool import BuiltinTool
from assistant.tools.builtin_names import BuiltinName
from assistant.tools.context import ToolContext, ToolResult

RESULTS = 3
PASSAGE_CHARS = 700
WORD_RE = re.compile(r"\w+", re.UNICODE)
# Titles weigh twice the text; candidates are filtered by profile afterwards.
FTS_QUERY = (
    "SELECT rowid FROM assistant_knowledgedocument_fts "
    "WHERE assistant_knowledgedocument_fts MATCH %s "
    "ORDER BY bm25(assistant_knowledgedocument_fts, 2.0, 1.0) LIMIT 50"
)


def search(query: str, profile_id: int | None, limit: int = RESULTS) -> list[tuple[str, str]]:
    """(title, text) of the best matches in the knowledge bases of ``profile_id``."""
    # Not a cycle (the models do not import the tools): imported here so that what the model
    # sees of the built-ins loads without Django (bench/tool_accuracy.py).
    from assistant.tools.models import KnowledgeDocument

    words = WORD_RE.findall(query)
    if not words or profile_id is None:
        return []
    documents = KnowledgeDocument.objects.filter(knowledge_base__profiles=profile_id)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = SearchVector("title", weight="A") + SearchVector("text", weight="B")
        terms = SearchQuery(" OR ".join(words), search_type="websearch")
        ranked = (
            documents.annotate(rank=SearchRank(vector, terms)).filter(rank__gt=0).order_by("-rank")
        )
        return list(ranked.values_list("title", "text")[:limit])
    # SQLite FTS5: any of the words, each quoted (no FTS syntax from the user).
    match = " OR ".join('"' + word.replace('"', '""') + '"' for word in words)
    allowed = set(documents.values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(FTS_QUERY, [match])
        ranked_ids = [row[0] for row in cursor.fetchall() if row[0] in allowed][:limit]
    by_id = dict(documents.filter(pk__in=ranked_ids).values_list("pk", "title"))
    texts = dict(documents.filter(pk__in=ranked_ids).values_list("pk", "text"))
    return [(by_id[pk], texts[pk]) for pk in ranked_ids]


def passage(text: str, words: list[str]) -> str:
    """The paragraph that mentions the query's words most, cut to a readable length."""
    wanted = {word.casefold() for word in words}
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()] or [text]
    best = max(
        paragraphs,
        key=lambda p: sum(w.casefold() in wanted for w in WORD_RE.findall(p)),
    )
    return best if len(best) <= PASSAGE_CHARS else best[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"


def run(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    """The best passages for ``query``, each with its document's title to cite."""
    query = str(arguments.get("query", ""))
    words = WORD_RE.findall(query)
    found = search(query, context.profile_id)
    if not found:
        return ToolResult(json.dumps({"results": [], "note": "Nothing in the documents."}))
    results = [{"title": title, "passage": passage(text, words)} for title, text in found]
    return ToolResult(json.dumps({"results": results, "note": "Cite the title of what you use."}))


TOOL = BuiltinTool(
    name=BuiltinName.SEARCH_KNOWLEDGE_BASE,
    description="Search the organisation's documents (handbooks, policies, FAQs). Use it for "
    "any question they may answer, and cite the document's title in the answer.",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for.", "maxLength": 500}
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    run=run,
)

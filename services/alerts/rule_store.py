"""Where rules are kept: ``FileRuleStore`` (the embedded default, one JSON file) and
``RedisRuleStore`` (several processes, ``services.alerts.redis_backend``). Web workers
write; the ingest side reloads when ``version()`` changes."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

import orjson

from services.alerts.rules import Rule, from_json


class RuleStore(Protocol):
    """Rules by id, with a version that changes on every write (cheap to poll)."""

    def all(self) -> list[Rule]: ...

    def get(self, rule_id: str) -> Rule | None: ...

    def put(self, rule: Rule) -> None: ...

    def delete(self, rule_id: str) -> bool: ...

    def version(self) -> int: ...


class FileRuleStore:
    """Rules in ``rules.json`` in ``directory``, rewritten whole (write then rename, so a
    crash never leaves half a file). Other processes' writes are seen through the file's
    modification time."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "rules.json"
        self._lock = threading.Lock()
        self._rules: dict[str, Rule] = {}
        self._stamp: int | None = None
        self._writes = 0

    def _stat(self) -> int:
        try:
            return os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return 0

    def _refresh(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        if not stamp:
            self._rules = {}
            return
        data = orjson.loads(self.path.read_bytes())
        self._rules = {r["id"]: from_json(r) for r in data.get("rules", [])}

    def _save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        body = {"rules": [r.to_json() for r in self._rules.values()]}
        tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path)
        self._writes += 1
        self._stamp = self._stat()

    def all(self) -> list[Rule]:
        with self._lock:
            self._refresh()
            return list(self._rules.values())

    def get(self, rule_id: str) -> Rule | None:
        with self._lock:
            self._refresh()
            return self._rules.get(rule_id)

    def put(self, rule: Rule) -> None:
        with self._lock:
            self._refresh()
            self._rules[rule.id] = rule
            self._save()

    def delete(self, rule_id: str) -> bool:
        with self._lock:
            self._refresh()
            if self._rules.pop(rule_id, None) is None:
                return False
            self._save()
            return True

    def version(self) -> int:
        with self._lock:
            self._refresh()
            return hash((self._stamp, self._writes))

#!/usr/bin/env python3
"""Reads the traffic of a schemathesis run (its HAR report) and its JUnit report, prints the run
summary, and checks that every 4xx JSON answer names the field at fault and the rule it broke.

    check_4xx.py --har HAR --junit JUNIT --spec openapi.json [--strict-4xx]

A 4xx body "names the field and the rule" when it is one of Cairn's error shapes and says where
and what:

- `{"error": "<field>: <rule>", "status": <code>, ...}` where `<field>` is a path without spaces
  (`limit`, `id`, `events[3].ts`, `body`, `authorization`, `x-inngest-expected-server-kind`), then
  `: `, then a non-empty rule; `status` equals the HTTP status. The event API's refusals
  (`{"ids": [], "status": ..., "error": ...}`) follow the same rule.
- or, for `POST /fn/register`, `data.errors` is a non-empty list whose every entry has a
  non-empty `field` and a non-empty `message`.

Known exception, reported but not counted: the event API's 401 for an unknown key, whose exact
body (`"error": "Event key not found"`) is what the Inngest SDKs expect.

Exit status: 0 when every checked 4xx body conforms (or without --strict-4xx), 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

FIELD_RULE = re.compile(r"^(?P<field>[A-Za-z0-9_\-.\[\]]+): (?P<rule>\S.*)$", re.DOTALL)
KNOWN_EXCEPTIONS = {("POST", "/e/{eventKey}", 401): "wire format the Inngest SDKs expect"}


def templates(spec_path: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(method, regex, template) for every operation of the spec, most specific first."""
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    result = []
    for template, item in spec.get("paths", {}).items():
        parts = re.split(r"(\{[^}]+\})", template)
        pattern = "^" + "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts) + "$"
        for method in item:
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                result.append((method.upper(), re.compile(pattern), template))
    # Literal segments beat parameters: fewer braces first.
    result.sort(key=lambda entry: entry[2].count("{"))
    return result


def operation_of(method: str, path: str, table) -> str:
    for candidate_method, pattern, template in table:
        if candidate_method == method and pattern.match(path):
            return template
    for _, pattern, template in table:
        if pattern.match(path):
            return template + " (method not served)"
    return "(no route)"


def shape(text: str) -> str:
    """The message with ids, numbers and quoted values blanked, to group alike answers."""
    text = re.sub(r"\"(?:[^\"\\]|\\.)*\"", '"…"', text)
    text = re.sub(r"\b[0-7][0-9A-HJKMNP-TV-Z]{25}\b", "<ulid>", text)
    text = re.sub(r"\d+", "N", text)
    return text[:120]


def conforms(status: int, body: object) -> str | None:
    """None when `body` names the field and the rule; else why not."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if body.get("status") != status:
        return f"`status` is {body.get('status')!r}, not {status}"
    data = body.get("data")
    if isinstance(data, dict) and "errors" in data:
        errors = data["errors"]
        if not isinstance(errors, list) or not errors:
            return "`data.errors` is empty"
        for entry in errors:
            if not isinstance(entry, dict) or not entry.get("field") or not entry.get("message"):
                return "a `data.errors` entry has no field or no message"
        return None
    error = body.get("error")
    if not isinstance(error, str):
        return "no string `error`"
    if not FIELD_RULE.match(error):
        return "`error` is not `<field>: <rule>`"
    return None


def junit_failures(path: str) -> list[str]:
    """One line per distinct failure in the JUnit report: the operation, the check, the status."""
    lines = []
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        for problem in case:
            if problem.tag not in {"failure", "error"}:
                continue
            text = problem.text or ""
            titles = re.findall(r"^- (.+)$", text, re.MULTILINE)
            statuses = re.findall(r"^\[(\d{3})\]", text, re.MULTILINE)
            if not titles:
                first = (problem.get("message") or text).strip().splitlines()
                titles = [first[0] if first else problem.tag]
            for index, title in enumerate(titles):
                status = f" [{statuses[index]}]" if index < len(statuses) else ""
                lines.append(f"{case.get('name')}: {title}{status}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--har", required=True)
    parser.add_argument("--junit")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--strict-4xx", action="store_true", help="exit 1 when a 4xx body does not conform")
    args = parser.parse_args()

    with open(args.har, encoding="utf-8") as f:
        entries = json.load(f)["log"]["entries"]
    table = templates(args.spec)

    statuses = collections.Counter()
    server_errors = collections.Counter()
    checked = 0
    not_json = collections.Counter()
    violations: dict[tuple, list] = {}
    known = collections.Counter()
    for entry in entries:
        method = entry["request"]["method"].upper()
        path = urlsplit(entry["request"]["url"]).path
        status = int(entry["response"]["status"])
        operation = operation_of(method, path, table)
        statuses[status // 100] += 1
        text = (entry["response"].get("content") or {}).get("text") or ""
        if status >= 500:
            try:
                error = json.loads(text).get("error")
            except (ValueError, AttributeError):
                error = None
            summary = shape(error) if isinstance(error, str) else (text[:80] or "<empty body>")
            server_errors[(method, operation, status, summary)] += 1
            continue
        if not 400 <= status < 500:
            continue
        try:
            body = json.loads(text)
        except ValueError:
            not_json[(method, operation, status)] += 1
            continue
        if (method, operation, status) in KNOWN_EXCEPTIONS:
            known[(method, operation, status)] += 1
            continue
        checked += 1
        reason = conforms(status, body)
        if reason is not None:
            key = (method, operation, status, reason, shape(str(body.get("error", "")) if isinstance(body, dict) else ""))
            violations.setdefault(key, []).append(text)

    failures = junit_failures(args.junit) if args.junit else []
    total_5xx = sum(server_errors.values())
    total_violations = sum(len(v) for v in violations.values())

    print("== Cairn fuzz summary ==")
    print(f"requests:               {len(entries)}")
    print(f"by class:               " + "  ".join(f"{k}xx={statuses[k]}" for k in sorted(statuses)))
    print(f"5xx responses:          {total_5xx}")
    for (method, operation, status, text), count in server_errors.most_common():
        print(f"    {count:6d} x {status} {method} {operation}  {text}")
    print(f"schemathesis failures:  {len(failures)}")
    for line in failures:
        print(f"    {line}")
    print(f"4xx JSON bodies checked: {checked}, not naming field and rule: {total_violations}")
    for (method, operation, status, reason, error_shape), texts in sorted(violations.items(), key=lambda kv: -len(kv[1])):
        print(f"    {len(texts):6d} x {status} {method} {operation}: {reason}; e.g. {texts[0][:160]}")
    for (method, operation, status), count in known.items():
        print(f"    {count:6d} x {status} {method} {operation}: allowed ({KNOWN_EXCEPTIONS[(method, operation, status)]})")
    if not_json:
        print(f"4xx without a JSON body (not checked): {sum(not_json.values())}")
        grouped = collections.Counter()
        for (method, operation, status), count in not_json.items():
            if operation.endswith("(method not served)") or operation == "(no route)":
                grouped[(status, "requests to a method or path Cairn does not serve (the router's empty 404)")] += count
            else:
                grouped[(status, f"{method} {operation}")] += count
        for (status, what), count in grouped.most_common():
            print(f"    {count:6d} x {status} {what}")
    return 1 if (args.strict_4xx and total_violations) else 0


if __name__ == "__main__":
    sys.exit(main())

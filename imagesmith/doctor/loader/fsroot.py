"""Paths inside an inspected filesystem (``--root DIR``) without ever leaving it.

Absolute symlinks in an unpacked image point into the image, not at the host; resolving them with
``os.path.realpath`` would silently read host files, so links are followed here by hand.
"""

from __future__ import annotations

import os
import posixpath
import stat

_MAX_LINKS = 40  # glibc/Linux give up after 40 links (ELOOP)


def host_path(root: str, path: str) -> str:
    """The host path of ``path`` (absolute, inside ``root``), following links within ``root``."""
    if root == "/":
        return path
    return root.rstrip("/") + realpath(root, path)


def realpath(root: str, path: str) -> str:
    """Canonical ``path`` inside ``root``; never escapes it. Broken links resolve as far as they can."""
    if root == "/":
        return os.path.realpath(path)
    return _walk(root, path)[0]


def _walk(root: str, path: str) -> tuple[str, bool]:
    """(canonical path inside ``root``, whether it ran into a link loop)."""
    base = root.rstrip("/")
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = base + "/" + "/".join([*resolved, part])
        try:
            st = os.lstat(candidate)
        except OSError:
            resolved.append(part)
            resolved.extend(p for p in parts if p not in ("", "."))
            break
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                resolved.append(part)
                resolved.extend(parts)
                return "/" + "/".join(resolved), True
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return "/" + "/".join(resolved), False


def classify(root: str, path: str) -> str:
    """What ``path`` is inside ``root``: 'file', 'directory', 'device', 'other', 'missing', or 'loop' when
    following it takes more than 40 symbolic links (what the kernel reports as ELOOP)."""
    if root == "/":
        try:
            st = os.stat(path)
        except OSError as exc:
            return "loop" if exc.errno == 40 else "missing"  # 40: ELOOP on Linux
    else:
        resolved, looped = _walk(root, path)
        if looped:
            return "loop"
        try:
            st = os.stat(root.rstrip("/") + resolved)
        except OSError:
            return "missing"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "device"
    return "other"


def match(name: str, pattern: str) -> bool:
    """``fnmatch.fnmatchcase`` for ``*``, ``?`` and ``[...]`` (ranges, ``!`` negation), without ``re``
    (fnmatch compiles patterns with it: ~4 ms of imports the doctor does not pay)."""
    if not pattern:
        return not name
    head = pattern[0]
    if head == "*":
        rest = pattern.lstrip("*")
        return any(match(name[i:], rest) for i in range(len(name) + 1))
    if not name:
        return False
    if head == "?":
        return match(name[1:], pattern[1:])
    if head == "[":
        end = pattern.find("]", 2)
        if end > 0:
            body = pattern[1:end]
            negate = body[:1] == "!"
            body = body[1:] if negate else body
            hit, i = False, 0
            while i < len(body):
                if i + 2 < len(body) and body[i + 1] == "-":
                    hit |= body[i] <= name[0] <= body[i + 2]
                    i += 3
                else:
                    hit |= body[i] == name[0]
                    i += 1
            return hit != negate and match(name[1:], pattern[end + 1 :])
    return head == name[0] and match(name[1:], pattern[1:])


def glob(pattern: str) -> list[str]:
    """``sorted(glob.glob(pattern))`` for an absolute host pattern, without importing glob (it brings ``re``,
    ``fnmatch`` and ``contextlib``: ~7 ms of the full doctor's budget). Hidden names match only a pattern
    that starts with a dot, as in glob."""
    found = [""]
    parts = [p for p in pattern.split("/") if p]
    for i, part in enumerate(parts):
        wild = any(c in part for c in "*?[")
        nxt: list[str] = []
        for base in found:
            if not wild:
                candidate = f"{base}/{part}"
                if i < len(parts) - 1 or os.path.lexists(candidate):
                    nxt.append(candidate)
                continue
            try:
                names = os.listdir(base or "/")
            except OSError:
                continue
            nxt += [
                f"{base}/{n}"
                for n in names
                if (not n.startswith(".") or part.startswith(".")) and match(n, part)
            ]
        found = nxt
    return sorted(p for p in found if os.path.lexists(p))


def listdir(root: str, path: str) -> frozenset[str] | None:
    try:
        return frozenset(os.listdir(host_path(root, path)))
    except OSError:
        return None


def dirname(path: str) -> str:
    return posixpath.dirname(path) or "/"

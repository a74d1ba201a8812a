"""``dwellir-harvester``: collect, list, validate, serve.

Exit status: 0 every collector succeeded (``partial`` counts), 1 a collector failed or timed out
(or a document did not validate), 2 a usage or config error. Errors are one line on stderr; a
traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from dwellir_harvester.config import (
    DEFAULT_CONFIG,
    DEFAULT_OUTPUT,
    ConfigError,
    Settings,
    __version__,
    configure,
    harvest_options,
    load_settings,
    output_dir_problem,
    read_quarantine,
)
from dwellir_harvester.lib import FAILING, CollectorError, DocumentValidationError, Problem, collector_statuses
from dwellir_harvester.lib.files import write_atomic
from dwellir_harvester.lib.limits import MAX_DEPTH, MAX_INT_BITS, MAX_INTERVAL, MAX_TIMEOUT, one_line, seconds
from dwellir_harvester.lib.redact import redact_text
from dwellir_harvester.lib.run import UsageError

if TYPE_CHECKING:
    from dwellir_harvester.lib._prefork import Prestarted
    from dwellir_harvester.lib.isolation import WorkerPool

logger = logging.getLogger("dwellir_harvester.cli")

PROG = "dwellir-harvester"
ENVIRONMENT = f"""environment:
  HARVESTER_CONFIG           main config file instead of {DEFAULT_CONFIG}
  HARVESTER_COLLECTOR_PATHS  plugin directories, separated by '{os.pathsep}' (after config files, before flags)
"""
DAEMON_ENVIRONMENT = """  DAEMON_AUTH_TOKENS         bearer tokens, comma-separated
  DAEMON_AUTH_TOKEN_FILE     token file: a JSON or YAML list of {token, label, enabled}
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


class _OutOfBoundsError(ValueError):
    """JSON that parses but holds what no setting accepts (a number out of range, too deep)."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfBoundsError(f"the number {one_line(text, 40)} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_BITS // 3 + 1:  # more digits than 2**MAX_INT_BITS has
        raise _OutOfBoundsError(f"a number is larger than 2**{MAX_INT_BITS}")
    value = int(text)
    if value.bit_length() > MAX_INT_BITS:
        raise _OutOfBoundsError(f"a number is larger than 2**{MAX_INT_BITS}")
    return value


def _not_a_number(name: str) -> NoReturn:
    raise _OutOfBoundsError(f"{name} is not a finite number")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _load_json(text: str, max_depth: int | None = None) -> Any:
    """``json.loads``, with too-deep nesting a ``ValueError`` instead of a ``RecursionError``.

    With ``max_depth``, numbers must be finite (``NaN``, ``Infinity`` and ``1e400`` are refused)
    and at most ``2**MAX_INT_BITS``, and nesting at most ``max_depth`` levels: ``_OutOfBoundsError``.
    """
    try:
        if max_depth is None:
            return json.loads(text)
        value = json.loads(text, parse_float=_finite, parse_int=_bounded_int, parse_constant=_not_a_number)
    except RecursionError:
        raise (_OutOfBoundsError if max_depth is not None else ValueError)("nested too deeply") from None
    if _depth(value) > max_depth:
        raise _OutOfBoundsError(f"nested more than {max_depth} levels deep")
    return value


def _option_pair(text: str) -> tuple[str, str, Any]:
    """``--option NAME.KEY=VALUE``: VALUE as JSON when it parses, else the text itself."""
    name_key, sep, raw = text.partition("=")
    name, dot, key = name_key.rpartition(".")
    if not sep or not dot or not name or not key:
        shown = one_line(redact_text(text[:400]), 80)  # redact_text is slow on long text: a prefix is enough
        raise argparse.ArgumentTypeError(f"expected NAME.KEY=VALUE, got {shown!r}")
    try:
        value = _load_json(raw, MAX_DEPTH)
    except _OutOfBoundsError as err:
        raise argparse.ArgumentTypeError(f"{one_line(name_key, 80)}: {err}") from None
    except ValueError:
        value = raw
    return name, key, value


def _seconds(maximum: float) -> Callable[[str], float]:
    """An argparse type: seconds, finite, greater than 0 and at most ``maximum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {one_line(text, 40)!r}") from None
        try:
            return seconds(value, "the value", maximum=maximum)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def _whole(low: int, high: int, noun: str) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {one_line(text, 40)!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _common() -> _Parser:
    common = _Parser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--config",
        metavar="FILE",
        help=f"main config file; drop-ins are read from config.d/ beside it (default: {DEFAULT_CONFIG})",
    )
    group.add_argument(
        "--collector-path",
        dest="collector_paths",
        action="append",
        metavar="DIR",
        help="a plugin directory (repeatable; beats HARVESTER_COLLECTOR_PATHS and config files on a name collision)",
    )
    group.add_argument("--exclude", action="append", metavar="NAME", help="never run this collector (repeatable)")
    group.add_argument(
        "--option",
        dest="option_pairs",
        action="append",
        type=_option_pair,
        metavar="NAME.KEY=VALUE",
        help="a collector option, VALUE read as JSON when it parses (repeatable)",
    )
    group.add_argument(
        "--timeout",
        type=_seconds(MAX_TIMEOUT),
        metavar="S",
        help=f"seconds each collector may run, at most {MAX_TIMEOUT:g} (default: its own TIMEOUT)",
    )
    group.add_argument(
        "--isolation",
        choices=["process", "thread"],
        help="run collectors in worker processes the harvester can kill, or in its own threads (default: process)",
    )
    group.add_argument(
        "--no-validate", dest="validate", action="store_const", const=False, help="skip schema validation"
    )
    group.add_argument("--schema", metavar="FILE", help="validate against this JSON Schema (default: the bundled one)")
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="log level (default: WARNING; serve: INFO)",
    )
    group.add_argument("--debug", action="store_true", help="log at DEBUG and show tracebacks")
    return common


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("daemon options")
    group.add_argument(
        "--collectors", nargs="+", metavar="NAME", help="collectors to harvest (default: config, else host)"
    )
    group.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    group.add_argument(
        "--port",
        type=_whole(0, 65535, "a port number"),
        help="TCP port to listen on, 0 for any free one (default: 18080)",
    )
    group.add_argument(
        "--interval",
        type=_seconds(MAX_INTERVAL),
        metavar="S",
        help=f"seconds between harvests, at most {MAX_INTERVAL:g} (default: 300)",
    )
    group.add_argument(
        "--output",
        metavar="FILE",
        help=f"write each document here, atomically; '' for none (default: {DEFAULT_OUTPUT})",
    )
    group.add_argument(
        "--auth-token", dest="auth_tokens", action="append", metavar="TOKEN", help="a bearer token (repeatable)"
    )
    group.add_argument("--auth-token-file", metavar="FILE", help="a JSON or YAML list of {token, label, enabled}")
    group.add_argument(
        "--check-config",
        action="store_true",
        help="check the config, tokens, collectors and options, print the effective settings, and exit",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog=PROG,
        description="Describe this machine: run collectors and publish one JSON document.",
        epilog=ENVIRONMENT
        + DAEMON_ENVIRONMENT
        + "\nexit status: 0 success (partial counts), 1 a collector failed or timed out, 2 usage or config error",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    collect = verbs.add_parser(
        "collect",
        parents=[common],
        formatter_class=_Formatter,
        help="run collectors and print the document",
        description="Run collectors concurrently and print the harvest document as JSON.",
        epilog=ENVIRONMENT,
    )
    collect.add_argument("names", nargs="*", metavar="NAME", help="collectors to run (default: config, else host)")
    collect.add_argument("--output", "-o", metavar="FILE", help="write the document here, atomically (default: stdout)")
    collect.add_argument(
        "--indent",
        type=_whole(0, 16, "a number of spaces"),
        metavar="N",
        help="JSON indentation, 0 to 16 (default: 2 on a terminal, compact when piped)",
    )
    collect.set_defaults(handler=cmd_collect)

    lister = verbs.add_parser(
        "list",
        parents=[common],
        formatter_class=_Formatter,
        help="show every discovered collector",
        description="Show every discovered collector: name, version, type, source, and what it overrides.",
        epilog=ENVIRONMENT,
    )
    lister.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lister.set_defaults(handler=cmd_list)

    validate = verbs.add_parser(
        "validate",
        parents=[common],
        formatter_class=_Formatter,
        help="check a document against the schema",
        description="Check a harvest document (a file, or - for stdin) against the bundled or --schema schema.",
    )
    validate.add_argument("file", metavar="FILE", help="the document to check; - reads stdin")
    validate.set_defaults(handler=cmd_validate)

    serve = verbs.add_parser(
        "serve",
        parents=[common],
        formatter_class=_Formatter,
        help="run the daemon",
        description="Harvest at start and every interval; serve /metadata, /healthz and /metrics over HTTP.",
        epilog=ENVIRONMENT + DAEMON_ENVIRONMENT,
    )
    _add_serve_arguments(serve)
    serve.set_defaults(handler=cmd_serve)

    fleet = verbs.add_parser(
        "fleet",
        parents=[common],
        formatter_class=_Formatter,
        help="list every node's latest document in a bucket prefix or a directory",
        description="Read every <node>/latest.json under SOURCE (s3://bucket/prefix, or a directory) in parallel "
        "and print one line per node; flag stale nodes and chains whose nodes run different client versions. "
        "For s3:// the endpoint and credentials come from a configured s3 sink of the same bucket, else from "
        "AWS_ENDPOINT_URL and the other AWS_* variables.",
        epilog="exit status: 0 every node fresh and readable, 1 some node stale or unreadable, 2 usage error",
    )
    fleet.add_argument("source", metavar="SOURCE", help="s3://bucket[/prefix] or a directory")
    fleet.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fleet.add_argument(
        "--stale",
        type=_seconds(MAX_INTERVAL * 365),
        default=900.0,
        metavar="SECONDS",
        help="flag nodes whose document is older than this (default: 900)",
    )
    fleet.set_defaults(handler=cmd_fleet)
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The config-layer view of the flags that were given."""
    keys = ("config", "collector_paths", "exclude", "timeout", "validate", "log_level", "host", "port", "interval")
    flags = {key: getattr(args, key, None) for key in (*keys, "isolation", "auth_tokens", "auth_token_file")}
    if args.verb == "serve":  # collect --output is its own: a daemon's configured output never hides stdout
        flags["output"] = args.output
    flags["collectors"] = getattr(args, "collectors", None) or getattr(args, "names", None)
    options: dict[str, dict[str, Any]] = {}
    for name, key, value in args.option_pairs or ():
        options.setdefault(name, {})[key] = value
    flags["collector_options"] = options
    return flags


def configure_logging(level: str, timestamps: bool = False) -> None:
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if timestamps else f"{PROG}: %(levelname)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)


def _dump(document: Any, indent: int | None) -> str:
    return json.dumps(document, indent=indent, separators=None if indent else (",", ":")) + "\n"


@contextlib.contextmanager
def _document_stream() -> Iterator[TextIO]:
    """Keep standard output for the document alone while plugins are imported and collectors run.

    Yields a text stream on the real standard output; meanwhile file descriptor 1 and
    ``sys.stdout`` point at standard error, so whatever plugin code prints (``print()``,
    ``os.write(1, ...)``, at import or in ``collect()``) lands there. Standard output is given back
    when every thread started meanwhile has finished; a collector thread still running after its
    timeout keeps writing to standard error for the rest of the process.
    """
    real = sys.stdout
    real.flush()
    saved = os.dup(1)
    stream = open(saved, "w", encoding=real.encoding or "utf-8", errors=real.errors or "strict")  # noqa: SIM115
    before = set(threading.enumerate())
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield stream
    finally:
        stream.flush()
        deadline = time.monotonic() + 0.2
        started = [t for t in threading.enumerate() if t not in before]
        for thread in started:  # a collector thread that has just reported is about to end
            thread.join(max(0.0, deadline - time.monotonic()))
        if not any(t.is_alive() for t in started):
            sys.stdout.flush()
            os.dup2(saved, 1)
            sys.stdout = real
        stream.close()


def _output_mode(path: str) -> tuple[int, int | None]:
    """``(mode, group)`` for writing ``--output path``: an existing file's, else 0644 and ours.

    Raises ``UsageError`` naming the path when it could not be written: its directory is missing
    or not writable, it is a directory or not a regular file, or it has a group we cannot give
    the new file while that group may read more than everyone else.
    """
    problem = output_dir_problem(path)
    if problem:
        raise UsageError(f"--output {path}: {problem}")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0o644, None
    mode = stat.S_IMODE(st.st_mode) & 0o777
    if st.st_gid == os.getegid():
        return mode, None
    if os.geteuid() == 0 or st.st_gid in os.getgroups():
        return mode, st.st_gid
    if (mode >> 3) & 0o7 & ~mode:  # its group may do more than others: a new group must not inherit that
        raise UsageError(f"--output {path}: cannot keep its group {st.st_gid} (not one of ours)")
    return mode, None


@contextlib.contextmanager
def _workers(settings: Settings, prestarted: Prestarted | None = None) -> Iterator[WorkerPool | None]:
    """The worker pool of ``isolation: process`` (closed, every worker reaped, at the end); None for ``thread``."""
    if settings.isolation == "thread":
        yield None
        return
    from dwellir_harvester.lib.isolation import WorkerPool

    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    pool = WorkerPool(memory_mb=settings.worker_memory_mb, log_level=str(level), fork=True, prestarted=prestarted)
    with pool:
        yield pool


def _report(problems: list[Problem]) -> None:
    for problem in problems:
        logger.warning("%s: %s", problem["where"], problem["problem"])  # the problem says "left out"


def cmd_collect(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from dwellir_harvester.lib import harvest

    mode, group = _output_mode(args.output) if args.output else (0o644, None)
    if args.schema and not os.path.isfile(args.schema):
        raise UsageError(f"--schema {args.schema}: no such file")
    exit_code = 0
    with _workers(settings, getattr(args, "prestarted", None)) as pool:
        configured = configure(_flags(args), args.names, pool=pool, settings=settings)
        _report(configured.problems)
        run = pool.harvest if pool is not None else harvest
        try:
            document = run(
                configured.names,
                registry=configured.registry,
                schema=args.schema,
                harvester_version=__version__,
                problems=configured.problems,
                **harvest_options(configured.settings),
            )
        except DocumentValidationError as err:
            if err.document is None:
                raise
            logger.error("%s", err)
            document, exit_code = err.document, 1
    indent = args.indent if args.indent is not None else (2 if out.isatty() and not args.output else None)
    text = _dump(document, indent)
    if args.output:
        write_atomic(args.output, text.encode(), mode=mode, group=group)
    else:
        out.write(text)
    failing = any(status in FAILING for status in collector_statuses(document).values())
    return exit_code or (1 if failing else 0)


def cmd_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _workers(settings) as pool:
        configured = configure(_flags(args), pool=pool, select=False, settings=settings)
    registry = configured.registry
    quarantined = read_quarantine(configured.settings)
    rows: list[dict[str, Any]] = []
    for spec in registry.discovered:
        winner = registry.specs[spec.name]
        meta = spec.checked_meta()  # read and checked at discovery
        rows.append(
            {
                "name": spec.name if winner is spec else spec.qualified_names[0],
                "version": meta.version,
                "type": meta.collector_type,
                "source": spec.source,
                "overrides": list(spec.overrides),
                "overridden_by": None if winner is spec else winner.source,
                "quarantined": spec.identity in quarantined,
            }
        )
    problems = configured.problems
    if args.json:
        out.write(json.dumps({"collectors": rows, "problems": problems}, indent=2) + "\n")
        return 0
    table = [("NAME", "VERSION", "TYPE", "SOURCE", "OVERRIDES")]
    for r in rows:
        overridden = f"(overridden by {r['overridden_by']})" if r["overridden_by"] else "-"
        notes = ", ".join(r["overrides"]) or overridden
        if r["quarantined"]:
            notes += " (quarantined: it killed a worker of the daemon, so it runs alone)"
        table.append((r["name"], r["version"], r["type"], r["source"], notes))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] + "\n")
    for p in problems:
        sys.stderr.write(f"{PROG}: not loaded: {p['where']}: {p['problem']}\n")
    return 0


#: The largest document ``validate`` reads (a harvest document is far smaller; the spool's bound).
MAX_VALIDATE_BYTES = 64 * 1024 * 1024


def cmd_validate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from dwellir_harvester.lib import validate_output
    from dwellir_harvester.lib.files import read_bytes

    name = "stdin" if args.file == "-" else args.file
    try:
        if args.file == "-":
            raw = sys.stdin.buffer.read(MAX_VALIDATE_BYTES + 1)
            if len(raw) > MAX_VALIDATE_BYTES:
                raise ValueError(f"holds more than the limit of {MAX_VALIDATE_BYTES} bytes")
        else:
            found = read_bytes(args.file, MAX_VALIDATE_BYTES)
            if found is None:
                raise UsageError(f"{name}: No such file or directory")
            raw = found
    except OSError as err:
        raise UsageError(f"{name}: {err.strerror or err}") from err
    except ValueError as err:  # not a regular file, or too large: the message names the reason
        message = one_line(str(err))
        raise UsageError(message if message.startswith(name) else f"{name}: {message}") from err
    try:
        document = _load_json(raw.decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError included
        sys.stderr.write(f"{PROG}: {name}: not valid JSON: {one_line(err)}\n")
        return 1
    try:
        validate_output(document, args.schema)
    except DocumentValidationError as err:
        sys.stderr.write(f"{PROG}: {name}: {len(err.errors)} problem(s):\n")
        for line in err.errors:
            sys.stderr.write(f"  {one_line(line)}\n")
        return 1
    except RecursionError:
        sys.stderr.write(f"{PROG}: {name}: nested too deeply to check\n")
        return 1
    out.write(f"{name}: valid\n")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from dwellir_harvester.daemon import serve

    return serve(settings, flags=_flags(args), check_only=args.check_config, schema=args.schema)


def cmd_fleet(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from ._fleet import cmd_fleet as run

    return run(args, settings, out)


def main(argv: Sequence[str] | None = None, *, prestarted: Prestarted | None = None) -> int:
    """Run the command line; returns the exit status.

    ``prestarted``: a worker forked before this module was imported, for ``collect`` to adopt (it
    is discarded when unused).
    """
    try:
        return _main(argv, prestarted)
    finally:
        if prestarted is not None:
            prestarted.discard()  # a no-op once a pool has adopted it


def _main(argv: Sequence[str] | None, prestarted: Prestarted | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.prestarted = prestarted
    debug = bool(args.debug)
    handler: Callable[[argparse.Namespace, Settings, TextIO], int] = args.handler
    try:
        # Warnings while config files are read already look like every other line; the configured
        # log level applies once they are read.
        configure_logging("DEBUG" if debug else (args.log_level or "WARNING"), timestamps=args.verb == "serve")
        settings = Settings() if args.verb == "validate" else load_settings(_flags(args))
        level = "DEBUG" if debug else (settings.log_level or ("INFO" if args.verb == "serve" else "WARNING"))
        configure_logging(level.upper(), timestamps=args.verb == "serve")
        if args.verb in ("collect", "list"):  # they import plugins and print what a script reads
            with _document_stream() as out:
                return handler(args, settings, out)
        return handler(args, settings, sys.stdout)
    except (UsageError, ConfigError, CollectorError, ValueError) as err:
        if debug:
            raise
        sys.stderr.write(f"{PROG}: error: {err}\n")
        return 2
    except OSError as err:
        if debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        sys.stderr.write(f"{PROG}: error: {where}{err.strerror or err}\n")
        return 2
    except KeyboardInterrupt:
        return 130


def daemon_main(argv: Sequence[str] | None = None) -> int:
    """``dwellir-harvester-daemon``: the same as ``dwellir-harvester serve``."""
    return main(["serve", *(sys.argv[1:] if argv is None else argv)])

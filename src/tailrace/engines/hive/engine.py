"""HiveEngine: runs Hive-dialect scripts on DuckDB the way `hive -f` ran them on EMR."""

from __future__ import annotations

import functools
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from tailrace.engines.hive import foresight, prune, serde, udfs, views
from tailrace.engines.hive.dialect import TailraceHive
from tailrace.engines.hive.interrupt import Interrupter
from tailrace.engines.hive.locate import Where, duck_error, parse_error
from tailrace.engines.hive.resources import Grant, RunLimits
from tailrace.engines.hive.sandbox import (
    lock_down,
    readable_dirs,
    refuse_engine_statement,
    refuse_file_functions,
)
from tailrace.engines.hive.script import (
    SourceMap,
    Statement,
    Variables,
    owner_environ,
    parse_set,
    split_statements,
    unterminated,
)
from tailrace.engines.hive.sources import SourceTables
from tailrace.engines.hive.statements import Statements
from tailrace.engines.hive.tables import TableFiles
from tailrace.engines.hive.translate import ResolvedTable, Translated, TranslateError, Translator
from tailrace.engines.metastore import DEFAULT_DB, Metastore, TableSpec
from tailrace.engines.result import HiveError, ScriptInterrupted, ScriptResult, StatementResult
from tailrace.errors import TailraceError, did_you_mean
from tailrace.storage import OwnerStorage, Storage

logging.getLogger("sqlglot").setLevel(logging.ERROR)

Echo = Callable[[str], None]
_UNREADABLE = re.compile(r"Invalid unicode|not utf-8 encoded|Maximum line size", re.IGNORECASE)


class HiveEngine(Statements):
    """Hive scripts on DuckDB; tables from the metastore (plus session-only ones)."""

    def __init__(
        self,
        storage: Storage,
        metastore: Metastore,
        *,
        work_dir: Path,
        threads: int | None = None,
        timezone: str = "UTC",
        grant: Grant | None = None,
    ) -> None:
        """grant: this run's slot of the host's DuckDB budget (memory, threads, spill
        directory; tailrace.engines.hive.resources), released by close()."""
        self.storage = storage
        self.metastore = metastore
        self.work_dir = Path(work_dir)
        self._owns_work_dir = not self.work_dir.exists()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.timezone = timezone
        self._grant = grant
        limits = grant.limits if grant is not None else RunLimits()
        threads = threads or limits.threads
        self.con = duckdb.connect()
        # Every limit is set before lock_down locks the configuration (a script cannot undo it).
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if limits.memory_limit:
            limit = int(limits.memory_limit)
            self.con.execute(f"SET memory_limit = '{limit}B'")
            # Freed memory that DuckDB's allocator keeps cached counts in the process's RSS but
            # not against memory_limit (128 MiB per thread, 512 MiB in bulk by default): scale
            # those caches to the limit and let background threads return it to the system.
            flush, bulk = min(128 * 2**20, limit // 16), min(512 * 2**20, limit // 8)
            self.con.execute(f"SET allocator_flush_threshold = '{flush}B'")
            self.con.execute(f"SET allocator_bulk_deallocation_flush_threshold = '{bulk}B'")
            self.con.execute("SET allocator_background_threads = true")
        if limits.max_temp_size:
            self.con.execute(f"SET max_temp_directory_size = '{int(limits.max_temp_size)}B'")
        # Insertion order stays preserved: result files keep the order of input lines and sorts.
        self.con.execute("SET preserve_insertion_order = true")
        spill = limits.temp_directory or self.work_dir / "spill"
        self.con.execute(f"SET temp_directory = {serde.sql_str(str(spill))}")
        serde.install(self.con)
        self.sandboxed = isinstance(storage, OwnerStorage)
        readable = readable_dirs(storage, self.work_dir) if self.sandboxed else None
        if readable is not None:
            lock_down(self.con, readable)
        self.files = TableFiles(
            storage, self.work_dir, readable, decompress_gzip=limits.decompress_gzip, threads=threads
        )
        self.session: dict[tuple[str, str], TableSpec] = {}
        self.hiveconf: dict[str, str] = {}
        self.database = DEFAULT_DB
        self._lenient = False
        self._filters: dict[str, prune.Filters | None] = {}
        self._viewed: dict[str, ResolvedTable] = {}
        self.warehouse = str(storage.warehouse)
        self.sources = SourceTables(self.con)
        self._later: Callable[[], list[str] | None] = lambda: None
        """The text of the statements after the one running (None outside a script)."""
        self._interrupt = Interrupter(self.con)

    # --- public API ----------------------------------------------------------------------

    def register_table(self, spec: TableSpec, *, persist: bool = False) -> None:
        """Make a table visible to scripts: for this engine only, or saved in the metastore."""
        if persist:
            self.metastore.replace_table(spec)
        else:
            self.session[(spec.database, spec.name)] = spec

    def interrupt(self) -> None:
        """Stop run_script from another thread: DuckDB interrupts the running statement and no
        other one starts; run_script raises ScriptInterrupted. Any later run_script stops too."""
        self._interrupt.fire()

    def close(self) -> None:
        """Close DuckDB and remove the staging files (and work_dir when the engine made it)."""
        self._interrupt.stop()
        try:
            self.con.close()
        except duckdb.Error:
            pass
        for sub in ("out", "inputs", "spill", "decoded"):
            shutil.rmtree(self.work_dir / sub, ignore_errors=True)
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        if self._grant is not None:
            self._grant.release()
            self._grant = None

    def settings(self) -> dict[str, str]:
        """DuckDB's own view of the limits this run got (current_setting on its connection)."""
        names = ("memory_limit", "threads", "temp_directory", "max_temp_directory_size")
        row = self.con.execute("SELECT " + ", ".join(f"current_setting('{n}')" for n in names)).fetchone()
        return {n: str(v) for n, v in zip(names, row or (), strict=True)}

    def run_script(
        self,
        text: str,
        variables: Mapping[str, str] | None = None,
        *,
        source: str = "<script>",
        echo: Echo | None = None,
        hiveconf: Mapping[str, str] | None = None,
        on_statement: Callable[[StatementResult], None] | None = None,
        echo_statements: bool = False,
        cancelled: threading.Event | None = None,
    ) -> ScriptResult:
        """Run every statement in order; the first failure raises HiveError (later ones do not run).

        Once `cancelled` is set (or interrupt() is called) no further statement starts and
        ScriptInterrupted is raised.

        `echo` gets messages (SET output, warnings) and, with echo_statements, each statement's
        text before it runs; `on_statement` gets each StatementResult as soon as it is done.
        """
        started = time.monotonic()
        self.hiveconf.update(hiveconf or {})
        for key in ("tailrace.timezone", "hive.local.time.zone"):
            # --hiveconf k=v means what SET k=v means.
            if key in (hiveconf or {}):
                self.timezone = (hiveconf or {})[key]
        vars_ = Variables(
            hivevar=variables or {},
            hiveconf=self.hiveconf,
            environ=owner_environ() if self.sandboxed else None,
        )
        vars_.hiveconf = self.hiveconf
        result = ScriptResult(source=source)
        smap = SourceMap(text)
        say = echo or (lambda _line: None)
        statements = split_statements(text)
        for n, stmt in enumerate(statements):
            self._later = functools.partial(_later_texts, vars_, statements[n + 1 :])
            sub = vars_.substitute(stmt.text)
            where = Where(stmt, sub, smap, source)
            line, col = where.position(None)
            if self._interrupt.fired or (cancelled is not None and cancelled.is_set()):
                raise self._stopped(where, result)
            if echo_statements:
                say(sub.text)
            t0 = time.monotonic()
            try:
                res = self._statement_once_more(where, vars_, say)
            except HiveError as exc:
                exc.partial = result
                raise
            except TranslateError as exc:
                raise self._attach(where.error(str(exc), exc.node), result)
            except duckdb.OutOfMemoryException as exc:
                limit = self.con.execute("SELECT current_setting('memory_limit')").fetchone()
                raise self._attach(
                    where.error(
                        f"out of memory within this run's DuckDB memory_limit ({limit[0] if limit else '?'}): "
                        f"{str(exc).splitlines()[0]}; raise memory_limit or host_memory in the [duckdb] "
                        "section of tailrace.toml"
                    ),
                    result,
                )
            except duckdb.Error as exc:
                if self._interrupt.fired:
                    raise self._stopped(where, result)
                raise self._attach(duck_error(where, exc), result)
            except TailraceError as exc:
                raise self._attach(where.error(str(exc)), result)
            except RecursionError as exc:
                raise self._attach(where.error(_unparsable(exc)), result)
            res.number, res.line, res.column = stmt.number, line, col
            res.seconds = time.monotonic() - t0
            result.statements.append(res)
            if on_statement is not None:
                on_statement(res)
        # Tables read once for several statements are not kept past the script (close() frees
        # them too when a statement failed).
        self._release_sources()
        result.seconds = time.monotonic() - started
        return result

    def _release_sources(self) -> None:
        try:
            self.sources.release()
        except duckdb.Error:
            pass  # interrupted or closed: close() frees them with the connection

    def _statement_once_more(self, where: Where, vars_: Variables, say: Echo) -> StatementResult:
        """Run a statement; when DuckDB cannot decode an input line, rerun it reading leniently
        (Hive would read such bytes; dropping them is better than failing the daily job)."""
        try:
            return self._counting(where, vars_, say)
        except duckdb.Error as exc:
            if self._lenient or not _UNREADABLE.search(str(exc)):
                raise
            self._lenient = True
            text = str(exc)
            for copy, original in self.files.originals.items():
                text = text.replace(copy, original)  # name the input, not its decompressed copy
            lines = text.splitlines()
            why = next((x.strip() for x in lines if _UNREADABLE.search(x)), lines[0])
            file = next(
                (x.split("=", 1)[1].strip() for x in lines if x.strip().startswith("file =")), "input"
            )
            say(
                f"warning: {where.source}: statement {where.stmt.number}: {file}: {lines[0]}: {why} "
                "Lines that cannot be read are dropped and counted from now on."
            )
            return self._counting(where, vars_, say)

    def _counting(self, where: Where, vars_: Variables, say: Echo) -> StatementResult:
        before = self._rejected() if self._lenient else 0
        res = self._statement(where, vars_, say)
        if self._lenient:
            res.malformed.dropped_lines = self._rejected() - before
        return res

    def _rejected(self) -> int:
        try:
            row = self.con.execute("SELECT count(*) FROM reject_errors").fetchone()
        except duckdb.Error:
            return 0
        return int(row[0]) if row else 0

    @staticmethod
    def _stopped(where: Where, partial: ScriptResult) -> ScriptInterrupted:
        line, col = where.position(None)
        return ScriptInterrupted(
            "interrupted: the script was stopped before this statement ended",
            source=where.source,
            statement=where.stmt.number,
            line=line,
            column=col,
            partial=partial,
        )

    @staticmethod
    def _attach(err: HiveError, partial: ScriptResult) -> HiveError:
        err.partial = partial
        return err

    # --- dispatch ------------------------------------------------------------------------

    def _statement(self, where: Where, vars_: Variables, say: Echo) -> StatementResult:
        text = where.sub.text
        done = StatementResult(number=0, kind="", line=0, column=0)
        setting = parse_set(text)
        if setting is not None:
            return self._set(setting, vars_, say)
        refuse_engine_statement(where, text)
        head = text.lstrip()[:40].upper()
        if re.match(r"ADD\s+(JAR|FILE|ARCHIVE)", head):
            say(f"ignored: {text.strip()[:80]} (no jars or files are needed on DuckDB)")
            done.kind = "ADD"
            return done
        if re.match(r"(CREATE\s+(DATABASE|SCHEMA)|MSCK|ALTER\s+TABLE|SHOW\s|DESC)", head):
            handled = self._command(where, text, say)
            if handled is not None:
                return handled
        try:
            tree = sqlglot.parse_one(text, read=TailraceHive)
        except sqlglot.errors.TokenError:
            raise where.error(*unterminated(text))
        except sqlglot.errors.ParseError as exc:
            sample = re.search(r"TABLESAMPLE\s*\(\s*\d+\s*[bkmg]\s*\)", text, re.IGNORECASE)
            if sample:
                raise where.error(
                    "TABLESAMPLE by input length is not supported (ROWS, 100 PERCENT and BUCKET are)",
                    offset=sample.start(),
                )
            raise parse_error(where, exc)
        except (RecursionError, IndexError, ValueError) as exc:
            # sqlglot's own failures on odd input (`MAP (x) USING`, deep nesting): the script's
            # error, located, never an internal error with tailrace's stack trace.
            raise where.error(_unparsable(exc))
        if isinstance(tree, exp.Create) and (tree.kind or "").upper() == "TABLE":
            return self._create(where, tree)
        if isinstance(tree, exp.Create) and (tree.kind or "").upper() == "VIEW":
            return views.create(self, where, tree)
        if isinstance(tree, exp.Drop) and (tree.kind or "").upper() in ("TABLE", "VIEW"):
            return self._drop(where, tree)
        if isinstance(tree, exp.TruncateTable):
            return self._truncate(where, tree)
        if isinstance(tree, exp.Insert):
            return self._insert(where, tree)
        if isinstance(tree, exp.MultitableInserts):
            return self._multi_insert(where, tree)
        if isinstance(tree, exp.Query):
            return self._select(where, tree)
        if isinstance(tree, exp.Use):
            self.database = (tree.this.name if tree.this is not None else "").lower() or DEFAULT_DB
            done.kind = "USE"
            return done
        if isinstance(tree, exp.Alter) and any(
            isinstance(a, exp.DropPartition) for a in tree.args.get("actions") or []
        ):
            return self._command(where, text, say) or done
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise where.error(f"{kind} statements are not supported by tailrace hive")

    def _set(self, setting: tuple[str, str | None], vars_: Variables, say: Echo) -> StatementResult:
        key, value = setting
        done = StatementResult(number=0, kind="SET", line=0, column=0)
        if not key:
            for k, v in sorted(
                {**self.hiveconf, **{f"hivevar:{k}": v for k, v in vars_.hivevar.items()}}.items()
            ):
                say(f"{k}={v}")
            return done
        ns, _, name = (
            key.partition(":") if key.startswith(("hivevar:", "hiveconf:", "define:")) else ("", "", key)
        )
        store = vars_.hivevar if ns in ("hivevar", "define") else self.hiveconf
        if value is None:
            say(f"{key}={store[name]}" if name in store else f"{key} is undefined")
        else:
            store[name] = value
            if name in ("tailrace.timezone", "hive.local.time.zone"):
                self.timezone = value
        done.message = key
        return done

    # --- tables --------------------------------------------------------------------------

    def _lookup(self, db: str | None, name: str) -> TableSpec | None:
        key = ((db or self.database).lower(), name.lower())
        return self.session.get(key) or self.metastore.get_table(*key)

    def _known(self) -> list[str]:
        names = {n for _, n in self.session} | {t.name for t in self.metastore.list_tables(self.database)}
        return sorted(names)

    def _require(self, where: Where, table: exp.Table) -> TableSpec:
        spec = self._lookup(table.db or None, table.name)
        if spec is None:
            raise where.error(
                f"Table not found '{table.name}'.{did_you_mean(table.name.lower(), self._known())}", table
            )
        return spec

    def _view(self, where: Where, table: exp.Table) -> ResolvedTable:
        spec = self._require(where, table)
        if views.VIEW_KEY in spec.properties:
            return views.resolved(spec)
        if spec.qualified_name in self._viewed:
            return self._viewed[spec.qualified_name]
        pieces: list[str] = []
        files: list[str] = []
        if spec.partitioned_by:
            filters = self._filters.get(spec.name)
            types = dict(spec.partitioned_by)
            for part in self.metastore.list_partitions(spec.database, spec.name):
                if not prune.keep(part.values, filters, types):
                    continue
                listing = self.files.list(part.location)
                files += listing.files
                pieces.append(serde.read_sql(spec, listing.files, part.values, lenient=self._lenient))
            if not pieces:
                pieces.append(serde.read_sql(spec, []))
        else:
            listing = self.files.list(spec.location)
            if not listing.exists and spec.external:
                raise where.error(
                    f"input folder {spec.location} of table {spec.name} does not exist "
                    f"({self._describe_location(spec.location)})",
                    table,
                )
            files += listing.files
            pieces.append(serde.read_sql(spec, listing.files, lenient=self._lenient))
        view = re.sub(r"\W", "_", f"__t_{spec.database}_{spec.name}")
        self.sources.define(view, " UNION ALL ".join(pieces), files, lenient=self._lenient)
        resolved = ResolvedTable(view=view, table=spec.qualified_name, columns=dict(spec.all_columns))
        self._viewed[spec.qualified_name] = resolved
        return resolved

    def _describe_location(self, location: str) -> str:
        # An s3:// location's local folder is the server's layout (under $TAILRACE_HOME), not
        # the owner's business: name the local folder only for a location given as a path.
        local = self.storage.resolve(location).local_path
        if local is None or location.lower().startswith(("s3://", "s3n://", "s3a://")):
            return f"no objects under {location}"
        return f"looked in {local}"

    def _translate(self, where: Where, query: exp.Expr, *, stable: bool = True) -> Translated:
        refuse_file_functions(where, query)
        self._filters = prune.partition_filters(query)
        self._viewed = {}
        translator = Translator(lambda t: self._view(where, t), timezone=self.timezone)
        translated = translator.translate(query, stable_order=stable)
        udfs.ensure(self.con, translated.sql)  # before rewrite, whose tables may need them
        translated.sql = self.sources.rewrite(
            translated.sql, stable=stable, plan=lambda: foresight.plan(query, self._later())
        )
        return translated

    # --- commands sqlglot does not parse -------------------------------------------------

    def _command(self, where: Where, text: str, say: Echo) -> StatementResult | None:
        from tailrace.engines.hive.commands import run_command

        return run_command(self, where, text, say)


def _later_texts(vars_: Variables, statements: Sequence[Statement]) -> list[str]:
    return [vars_.substitute(s.text).text for s in statements]


def _unparsable(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "the statement is nested too deeply to translate (split it into smaller queries)"
    return "cannot parse this statement (is it HiveQL?)"

"""LATERAL VIEW for the Hive-to-DuckDB translator: json_tuple, explode and posexplode (over
arrays and maps, OUTER too), parse_url_tuple and inline, each as DuckDB SQL over the FROM item.

A mixin of `translate.Translator`: it keeps the translator's record of FROM items (`Source`),
since a rewritten lateral view becomes the FROM item the rest of the query reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from tailrace.engines.hive import udtf
from tailrace.engines.hive.translate_errors import TranslateError


@dataclass
class Source:
    """A FROM item of the rewritten query whose hidden columns we know."""

    alias: str
    table: str
    hidden: list[str] = field(default_factory=list)
    node: int = 0
    """id() of the FROM item that has the hidden columns (a subquery reusing the alias has none)."""
    columns: list[str] | None = None
    """The item's visible columns, when known."""


def from_clause(select: exp.Select) -> exp.From | None:
    return select.args.get("from_") or select.args.get("from")


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


class LateralViews:
    sources: dict[str, Source]
    by_node: dict[int, Source]
    types: dict[str, str]
    _n: int
    _generated: set[int]

    def _note_type(self, column: str, typ: str) -> None:
        raise NotImplementedError

    # --- LATERAL VIEW ---------------------------------------------------------------------

    def _rewrite_laterals(self, select: exp.Select) -> None:
        laterals = select.args.get("laterals") or []
        kept: list[exp.Expr] = []
        for lateral in laterals:
            func = lateral.this
            name = func.name.lower() if isinstance(func, exp.Anonymous) else ""
            arg = func.this if isinstance(func, exp.Explode) else None
            if isinstance(arg, exp.Column) and self.types.get(arg.name.lower(), "").startswith("map<"):
                udtf.name_map_columns(lateral)
            udtf.default_names(lateral)
            if name == "json_tuple":
                self._json_tuple(select, lateral)
            elif (wrapped := udtf.wrap_explode(select, lateral, self._from_columns(select))) is not None:
                self._note_wrap(*wrapped)
            elif any(f(select, lateral) for f in (udtf.lateral_map, udtf.lateral_url, udtf.lateral_inline)):
                continue
            elif isinstance(func, exp.Explode | exp.Posexplode):
                self._explode(lateral)
                kept.append(lateral)
            else:
                raise TranslateError(
                    f"LATERAL VIEW {func.sql(dialect='hive')[:40]} is not supported "
                    "(json_tuple, parse_url_tuple, explode, posexplode, inline and stack are)",
                    func,
                )
        select.set("laterals", kept or None)

    def _json_tuple(self, select: exp.Select, lateral: exp.Lateral) -> None:
        func = lateral.this
        args = list(func.expressions)
        if len(args) < 2:
            raise TranslateError("json_tuple needs a JSON value and at least one key", func)
        keys: list[str] = []
        for key in args[1:]:
            if not (isinstance(key, exp.Literal) and key.is_string):
                raise TranslateError("json_tuple keys must be string literals", key)
            keys.append(key.this)
        alias = lateral.args.get("alias")
        names = [c.name for c in alias.columns] if alias is not None and alias.columns else []
        if not names:
            names = [f"c{i}" for i in range(len(keys))]
        if len(names) != len(keys):
            raise TranslateError(
                f"json_tuple returns {len(keys)} columns but the alias names {len(names)}", lateral
            )
        frm = from_clause(select)
        if frm is None:
            raise TranslateError("LATERAL VIEW needs a FROM table", lateral)
        base = frm.this
        base_alias = base.alias_or_name
        self._n += 1
        n = self._n
        paths = ", ".join("'$.\"" + k.replace("'", "''").replace('"', '\\"') + "\"'" for k in keys)
        outs = ", ".join(
            f"__jt{n}[{i + 1}] AS {_ident(c).sql(dialect='duckdb')}" for i, c in enumerate(names)
        )
        template = (
            f"SELECT * EXCLUDE (__jt{n}, __jin{n}), {outs}, (__jin{n} AND __jt{n} IS NULL) AS __jbad{n} "
            f"FROM (SELECT {_ident(base_alias).sql(dialect='duckdb')}.*, "
            f"TRY(__JES__(__JSON__, [{paths}])) AS __jt{n}, __JSON__ IS NOT NULL AS __jin{n} "
            f"FROM __BASE__) AS __lv{n}"
        )
        derived = sqlglot.parse_one(template, read="duckdb")
        self._generated.update(id(s) for s in derived.find_all(exp.Select))
        for placeholder in list(derived.find_all(exp.Column)):
            if placeholder.name == "__JSON__":
                placeholder.replace(args[0].copy())
        for fn in list(derived.find_all(exp.Anonymous)):
            if fn.name == "__JES__":
                fn.set("this", "json_extract_string")
        for base_ph in list(derived.find_all(exp.Table)):
            if base_ph.name == "__BASE__":
                base_ph.replace(base.copy())
        sub = exp.Subquery(this=derived, alias=exp.TableAlias(this=exp.to_identifier(base_alias)))
        frm.set("this", sub)
        lateral_alias = alias.name.lower() if alias is not None and alias.name else None
        if lateral_alias:
            udtf.expand_view_star(select, lateral_alias, [(base_alias, c, c) for c in names])
            for col in select.find_all(exp.Column):
                if col.table and col.table.lower() == lateral_alias:
                    col.set("table", exp.to_identifier(base_alias))
        for c in names:
            self._note_type(c.lower(), "string")
        source = self.sources.get(base_alias.lower())
        hidden = (source.hidden if source else []) + [f"__jbad{n}"]
        table = source.table if source else ""
        columns = source.columns + names if source and source.columns is not None else None
        self.sources[base_alias.lower()] = Source(base_alias, table, hidden, id(sub), columns)
        self.by_node[id(sub)] = self.sources[base_alias.lower()]

    def _select_sources(self, select: exp.Select) -> list[Source]:
        raise NotImplementedError

    def _from_columns(self, select: exp.Select) -> list[str] | None:
        frm = from_clause(select)
        source = self.by_node.get(id(frm.this)) if frm is not None else None
        if source is not None:
            return source.columns
        if frm is not None and isinstance(frm.this, exp.Subquery) and isinstance(frm.this.this, exp.Select):
            return self._star_columns(frm.this.this)
        return None

    def _star_columns(self, inner: exp.Select) -> list[str] | None:
        """The columns of `(SELECT *, t.*, x ... FROM known tables)`, when every star's tables
        are known (a lateral view inside adds columns this does not see: None)."""
        if inner.args.get("laterals") or id(inner) in self._generated:
            return None
        sources = self._select_sources(inner)
        out: list[str] = []
        for e in inner.expressions:
            if isinstance(e, exp.Star):
                picked = sources
            elif isinstance(e, exp.Column) and isinstance(e.this, exp.Star):
                picked = [s for s in sources if s.alias.lower() == e.table.lower()]
            else:
                out.append(e.alias_or_name)
                continue
            if not picked or any(s.columns is None for s in picked):
                return None
            out += [c for s in picked for c in s.columns or []]
        return out

    def _note_wrap(self, sub: exp.Subquery, base_alias: str, names: list[str]) -> None:
        source = self.sources.get(base_alias.lower())
        hidden = source.hidden if source else []
        columns = source.columns + names if source and source.columns is not None else None
        self.sources[base_alias.lower()] = Source(
            base_alias, source.table if source else "", hidden, id(sub), columns
        )
        self.by_node[id(sub)] = self.sources[base_alias.lower()]
        self._generated.update(id(s) for s in sub.find_all(exp.Select))
        for c in names:
            self._note_type(c.lower(), "unknown")

    def _explode(self, lateral: exp.Lateral) -> None:
        if lateral.args.get("outer"):
            arg = lateral.this.this
            # OUTER keeps the row when the array is NULL or empty: explode one NULL instead.
            lateral.this.set(
                "this",
                sqlglot.parse_one(
                    "CASE WHEN len(__A__) > 0 THEN __A__ ELSE [NULL] END", read="duckdb"
                ).transform(lambda n: arg.copy() if isinstance(n, exp.Column) and n.name == "__A__" else n),
            )
            lateral.set("outer", False)
        alias = lateral.args.get("alias")
        if alias is not None:
            for c in alias.columns:
                self._note_type(c.name.lower(), "unknown")

"""Hive's table-generating functions and FROM-clause shapes, rewritten for DuckDB.

In a select list, `explode(m) AS (k, v)`, `posexplode(a)`, `stack(n, ...)` and `inline(a)`
become several `unnest` columns of one SELECT (DuckDB unnests them in lockstep). A LATERAL VIEW
over a map becomes a lateral subquery with one column per name. TABLESAMPLE is honoured.
"""

from __future__ import annotations

from sqlglot import exp

from tailrace.engines.hive.translate_errors import TranslateError


def _unnest(e: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(exp.Explode(this=e), name, quoted=True)


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _is_map(e: exp.Expr) -> bool:
    return isinstance(e, exp.VarMap | exp.Map | exp.StrToMap) or (
        isinstance(e, exp.Anonymous) and e.name.lower() in ("map", "str_to_map")
    )


def hoist_joins(select: exp.Select) -> None:
    """`FROM a JOIN b ON ... SELECT`/`INSERT` (and `FROM a LATERAL VIEW ... INSERT`): sqlglot
    hangs the joins and lateral views on the FROM table."""
    frm = select.args.get("from_") or select.args.get("from")
    if frm is None:
        return
    joins = frm.this.args.get("joins")
    if joins:
        frm.this.set("joins", None)
        for j in joins:
            select.append("joins", j)
    laterals = frm.this.args.get("laterals")
    if laterals:
        frm.this.set("laterals", None)
        select.set("laterals", [*laterals, *(select.args.get("laterals") or [])])


def url_parts(func: exp.Expr) -> list[exp.Expr]:
    """parse_url_tuple(url, 'HOST', 'QUERY:k', ...): one parse_url call per part."""
    args = list(func.expressions)
    if len(args) < 2:
        raise TranslateError("parse_url_tuple needs a URL and at least one part", func)
    out: list[exp.Expr] = []
    for part in args[1:]:
        if not (isinstance(part, exp.Literal) and part.is_string):
            raise TranslateError("parse_url_tuple parts must be string literals", part)
        name, _, key = part.this.partition(":")
        if key and name.upper() == "QUERY":
            out.append(
                _fn(
                    "__hive_parse_url_key",
                    args[0].copy(),
                    exp.Literal.string("QUERY"),
                    exp.Literal.string(key),
                )
            )
        else:
            out.append(_fn("__hive_parse_url", args[0].copy(), exp.Literal.string(part.this)))
    return out


def lateral_url(select: exp.Select, lateral: exp.Lateral) -> bool:
    """LATERAL VIEW parse_url_tuple(...) t AS a, b: a one-row lateral subquery."""
    func = lateral.this
    if not (isinstance(func, exp.Anonymous) and func.name.lower() == "parse_url_tuple"):
        return False
    parts = url_parts(func)
    alias = lateral.args.get("alias")
    names = [c.name for c in alias.columns] if alias is not None and alias.columns else []
    names = names or [f"c{i}" for i in range(len(parts))]
    if len(names) != len(parts):
        raise TranslateError(
            f"parse_url_tuple gives {len(parts)} columns but the alias names {len(names)}", lateral
        )
    inner = exp.select(*(exp.alias_(p, n, quoted=True) for p, n in zip(parts, names, strict=True)))
    table_alias = alias.name if alias is not None and alias.name else "__lv"
    sub = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(table_alias)))
    select.append("joins", exp.Join(this=sub, kind="CROSS"))
    return True


def _json_tuple_columns(func: exp.Anonymous, names: list[str], item: exp.Expr) -> list[exp.Expr]:
    """json_tuple(j, 'k1', ...) [AS (a, ...)] in the select list: one column per key, the
    value as a string (NULL for a missing key, and for NULL or invalid JSON)."""
    args = list(func.expressions)
    if len(args) < 2 or not all(isinstance(k, exp.Literal) and k.is_string for k in args[1:]):
        raise TranslateError("json_tuple needs a JSON value and string literal keys", func)
    keys = [k.this for k in args[1:]]
    names = names or [f"c{i}" for i in range(len(keys))]
    if len(names) != len(keys):
        raise TranslateError(f"json_tuple gives {len(keys)} columns but the alias names {len(names)}", item)
    paths = exp.Array(expressions=[exp.Literal.string('$."' + k.replace('"', '\\"') + '"') for k in keys])
    values = _fn("TRY", _fn("json_extract_string", args[0].copy(), paths))
    return [
        exp.alias_(_fn("list_extract", values.copy(), exp.Literal.number(i + 1)), n, quoted=True)
        for i, n in enumerate(names)
    ]


def _expand(item: exp.Expr) -> list[exp.Expr] | None:
    names: list[str] = []
    func = item
    if isinstance(item, exp.Aliases):
        func = item.this
        names = [i.name for i in item.expressions]
    elif isinstance(item, exp.Alias):
        func = item.this
        names = [item.alias]
    if isinstance(func, exp.Anonymous) and func.name.lower() == "json_tuple":
        return _json_tuple_columns(func, names, item)
    if isinstance(func, exp.Anonymous) and func.name.lower() == "parse_url_tuple":
        parts = url_parts(func)
        names = names or [f"c{i}" for i in range(len(parts))]
        if len(names) != len(parts):
            raise TranslateError(
                f"parse_url_tuple gives {len(parts)} columns but the alias names {len(names)}", item
            )
        return [exp.alias_(p, n, quoted=True) for p, n in zip(parts, names, strict=True)]
    if isinstance(func, exp.Explode) and not isinstance(func, exp.Posexplode):
        arg = func.this
        if len(names) == 2 or (_is_map(arg) and len(names) != 1):
            k, v = names or ["key", "value"]
            return [_unnest(_fn("map_keys", arg), k), _unnest(_fn("map_values", arg.copy()), v)]
        if func is item:
            return [_unnest(arg, "col")]
        if isinstance(item, exp.Aliases) and len(names) == 1:  # `AS (c)`: one name in parentheses
            return [_unnest(arg, names[0])]
        return None
    if isinstance(func, exp.Posexplode):
        arg = func.this
        pos, val = names if len(names) == 2 else ["pos", "val"]
        return [
            _unnest(_fn("range", _fn("len", arg)), pos),
            _unnest(arg.copy(), val),
        ]
    if isinstance(func, exp.Stack):
        n = func.this
        args = list(func.expressions)
        if not (isinstance(n, exp.Literal) and n.this.isdigit()) or int(n.this) <= 0:
            raise TranslateError("stack needs a positive integer literal as its first argument", func)
        rows = int(n.this)
        width = -(-len(args) // rows)
        cols = names or [f"col{i}" for i in range(width)]
        if len(cols) != width:
            raise TranslateError(f"stack gives {width} columns but the alias names {len(cols)}", item)
        out = []
        for c in range(width):
            values = [args[r * width + c] if r * width + c < len(args) else exp.Null() for r in range(rows)]
            out.append(_unnest(exp.Array(expressions=values), cols[c]))
        return out
    if isinstance(func, exp.Inline):
        return [
            exp.Explode(
                this=func.this,
                expressions=[exp.Kwarg(this=exp.var("recursive"), expression=exp.true())],
            )
        ]
    return None


def select_list(select: exp.Select) -> None:
    """UDTF calls in the select list (each alone in Hive's grammar) as lockstep unnests."""
    items = list(select.expressions)
    out: list[exp.Expr] = []
    changed = False
    for item in items:
        new = _expand(item)
        if new is None:
            out.append(item)
        else:
            out.extend(new)
            changed = True
    if changed:
        select.set("expressions", out)


def _outer(arg: exp.Expr) -> exp.Expr:
    """OUTER keeps the row when the list is NULL or empty: one NULL is exploded instead."""
    has = exp.GT(this=_fn("len", arg), expression=exp.Literal.number(0))
    return exp.If(this=has, true=arg.copy(), false=exp.Array(expressions=[exp.Null()]))


def _base_columns(base: exp.Expr, table_columns: list[str] | None) -> set[str] | None:
    if table_columns is not None:
        return {c.lower() for c in table_columns}
    if isinstance(base, exp.Subquery) and isinstance(base.this, exp.Select):
        if any(isinstance(e, exp.Star) or e.find(exp.Star) for e in base.this.expressions):
            return None
        return {e.alias_or_name.lower() for e in base.this.expressions}
    return None


def expand_view_star(select: exp.Select, view: str, columns: list[tuple[str, str, str]]) -> None:
    """`SELECT v.*` of a lateral view v folded into the FROM item: v's own columns, given as
    (table, column held there, name shown)."""
    for i, item in enumerate(list(select.expressions)):
        if isinstance(item, exp.Column) and isinstance(item.this, exp.Star) and item.table.lower() == view:
            cols = [
                exp.alias_(exp.column(held, table=table, quoted=True), name, quoted=True)
                for table, held, name in columns
            ]
            select.set("expressions", select.expressions[:i] + cols + select.expressions[i + 1 :])
            return


def _struct_fields(arr: exp.Expr) -> list[str] | None:
    """The field names of inline()'s structs when the array is written out (Hive's struct()
    names them col1, col2...; named_struct by its names)."""
    if not (isinstance(arr, exp.Array) and arr.expressions and isinstance(arr.expressions[0], exp.Struct)):
        return None
    fields = [f.this.name if isinstance(f, exp.PropertyEQ) else "" for f in arr.expressions[0].expressions]
    return fields if all(fields) else None


def _view_columns(func: exp.Expr, names: list[str]) -> tuple[list[exp.Expr], list[str], bool] | None:
    """What a lateral view's function gives, as select-list expressions over the FROM item
    (unnests that DuckDB runs in lockstep), their names, and whether OUTER can apply."""
    if isinstance(func, exp.Posexplode):
        arg = func.this
        return [_fn("range", _fn("len", arg.copy())), arg.copy()], names, True
    if isinstance(func, exp.Explode):
        arg = func.this
        if len(names) == 2:
            return [_fn("map_keys", arg.copy()), _fn("map_values", arg.copy())], names, True
        return [arg.copy()], names, True
    if isinstance(func, exp.Inline):
        fields = _struct_fields(func.this)
        if fields is None:
            return None
        names = names or fields
        if len(names) != len(fields):
            raise TranslateError(f"inline gives {len(fields)} columns but the alias names {len(names)}", func)
        return [func.this.copy() for _ in fields], names, True
    if isinstance(func, exp.Stack):
        cols = _expand(exp.Aliases(this=func.copy(), expressions=[exp.to_identifier(n) for n in names]))
        if cols is None:
            return None
        return [c.this.this for c in cols], [c.alias for c in cols], False
    return None


def wrap_explode(
    select: exp.Select, lateral: exp.Lateral, table_columns: list[str] | None
) -> tuple[exp.Subquery, str, list[str]] | None:
    """LATERAL VIEW [OUTER] explode/posexplode/inline/stack over the FROM item as select-list
    unnests in a subquery that takes the FROM item's alias: `(SELECT b.*, unnest(x) AS c FROM b)
    AS b`. Each input row's values then come out together and in order, as Hive gives them
    (DuckDB plans a joined UNNEST as a hash join, which keeps no order, so a LIMIT without ORDER
    BY would keep other rows than Hive's). None when the view reads a joined table."""
    func = lateral.this
    frm = select.args.get("from_") or select.args.get("from")
    if frm is None or not frm.this.alias_or_name:
        return None
    base = frm.this
    base_alias = base.alias_or_name
    if any(c.table and c.table.lower() != base_alias.lower() for c in func.find_all(exp.Column)):
        return None
    alias = lateral.args.get("alias")
    given = [c.name for c in alias.columns] if alias is not None and alias.columns else []
    shaped = _view_columns(func, given)
    if shaped is None:
        return None
    lists, names, outer_ok = shaped
    known = _base_columns(base, table_columns)
    if len(names) != len(lists) or known is None:
        return None
    # A name the FROM item has too (`explode(map) t` gives key, value; src has them) is held
    # under another name; Hive reads it only as t.key (a bare `key` is ambiguous there).
    held = [f"__lv_{n}" if n.lower() in known else n for n in names]
    if lateral.args.get("outer") and outer_ok:
        lists = [_outer(x) for x in lists]
    if isinstance(func, exp.Inline):
        cols = [
            exp.alias_(
                _fn("struct_extract_at", exp.Explode(this=x), exp.Literal.number(i + 1)), n, quoted=True
            )
            for i, (x, n) in enumerate(zip(lists, held, strict=True))
        ]
    else:
        cols = [_unnest(x, n) for x, n in zip(lists, held, strict=True)]
    star = exp.Column(this=exp.Star(), table=exp.to_identifier(base_alias))
    inner = exp.select(star, *cols).from_(base.copy())
    sub = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(base_alias)))
    frm.set("this", sub)
    for item in select.expressions:
        # `src.*` is the table's columns only, not the view's the subquery added.
        if (
            isinstance(item, exp.Column)
            and isinstance(item.this, exp.Star)
            and item.table.lower() == base_alias.lower()
        ):
            item.this.set("except_", [*(item.this.args.get("except_") or []), *(exp.column(h) for h in held)])
    view = alias.name.lower() if alias is not None and alias.name else ""
    rename = {n.lower(): h for n, h in zip(names, held, strict=True)}
    if view:
        expand_view_star(select, view, [(base_alias, h, n) for n, h in zip(names, held, strict=True)])
        for col in select.find_all(exp.Column):
            if col.table and col.table.lower() == view:
                col.set("table", exp.to_identifier(base_alias))
                if col.name.lower() in rename:
                    col.set("this", exp.to_identifier(rename[col.name.lower()], quoted=True))
    return sub, base_alias, held


def name_map_columns(lateral: exp.Lateral) -> None:
    """explode of a map column without a column list gives Hive's `key`, `value`."""
    alias = lateral.args.get("alias")
    if (alias is not None and alias.columns) or isinstance(lateral.this, exp.Posexplode):
        return
    table = alias.this.copy() if alias is not None and alias.this is not None else exp.to_identifier("__lv")
    lateral.set("alias", exp.TableAlias(this=table, columns=[exp.to_identifier(n) for n in ("key", "value")]))


def default_names(lateral: exp.Lateral) -> None:
    """Hive's column names for a LATERAL VIEW without a column list: explode gives `col`
    (`key`, `value` for a map), posexplode `pos`, `val`."""
    func = lateral.this
    alias = lateral.args.get("alias")
    if alias is not None and alias.columns:
        return
    if isinstance(func, exp.Posexplode):
        names = ["pos", "val"]
    elif isinstance(func, exp.Explode):
        names = ["key", "value"] if _is_map(func.this) else ["col"]
    else:
        return
    table = alias.this.copy() if alias is not None and alias.this is not None else exp.to_identifier("__lv")
    lateral.set("alias", exp.TableAlias(this=table, columns=[exp.to_identifier(n) for n in names]))


def lateral_map(select: exp.Select, lateral: exp.Lateral) -> bool:
    """LATERAL VIEW explode(map) t AS k, v and posexplode(a) t AS p, v: a lateral subquery
    aliased t with the two columns (lockstep unnests)."""
    func = lateral.this
    alias = lateral.args.get("alias")
    names = [c.name for c in alias.columns] if alias is not None and alias.columns else []
    if len(names) != 2 or not isinstance(func, exp.Explode):
        return False
    arg = func.this
    if isinstance(func, exp.Posexplode):
        first = _fn("range", _fn("len", arg))
        second = arg.copy()
    else:
        first, second = _fn("map_keys", arg), _fn("map_values", arg.copy())
    inner = exp.select(_unnest(first, names[0]), _unnest(second, names[1]))
    table_alias = alias.name if alias is not None and alias.name else "__lv"
    sub = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(table_alias)))
    if lateral.args.get("outer"):
        select.append("joins", exp.Join(this=sub, side="LEFT", on=exp.true()))
    else:
        select.append("joins", exp.Join(this=sub, kind="CROSS"))
    return True


def lateral_inline(select: exp.Select, lateral: exp.Lateral) -> bool:
    """LATERAL VIEW inline(array of structs) t [AS c1, c2...]: one row per struct, one column
    per field (named by the column list, else by the struct's field names)."""
    func = lateral.this
    if isinstance(func, exp.Inline):
        arg = func.this
    elif isinstance(func, exp.Anonymous) and func.name.lower() == "inline" and len(func.expressions) == 1:
        arg = func.expressions[0]
    else:
        return False
    alias = lateral.args.get("alias")
    structs = exp.select(_unnest(arg, "__s")).subquery("__u")
    inner = exp.select(_fn("unnest", exp.column("__s"))).from_(structs)
    name = alias.name if alias is not None and alias.name else "__lv"
    columns = [c.copy() for c in alias.columns] if alias is not None else []
    sub = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(name), columns=columns))
    if lateral.args.get("outer"):
        select.append("joins", exp.Join(this=sub, side="LEFT", on=exp.true()))
    else:
        select.append("joins", exp.Join(this=sub, kind="CROSS"))
    return True


def sample(new: exp.Table, sample_node: exp.TableSample | None) -> exp.Expr | None:
    """TABLESAMPLE as Hive means it, as a WHERE/LIMIT on a subquery over the table; None when
    there is none. ROWS: the first n rows of the input; PERCENT: rows up to that share of the
    input (Hive samples whole blocks, so a small table is read whole at any percent); BUCKET x
    OUT OF y ON col: rows whose column hash puts them in bucket x-1 (Hive's hash of ints is the
    value itself, of strings String.hashCode)."""
    if sample_node is None:
        return None
    size = sample_node.args.get("size")
    rows = sample_node.args.get("rows")
    percent = sample_node.args.get("percent")
    alias = new.alias or new.name
    base = exp.select("*").from_(exp.Table(this=new.this.copy()))
    if size is not None or rows is not None:
        n = size if size is not None else rows
        if not (isinstance(n, exp.Literal) and n.this.isdigit()):
            raise TranslateError("TABLESAMPLE(n ROWS) needs a whole number", sample_node)
        base = base.limit(int(n.this))
    elif percent is not None:
        if not isinstance(percent, exp.Literal) or percent.is_string:
            raise TranslateError("TABLESAMPLE(n PERCENT) needs a number", sample_node)
        pct = float(percent.this)
        if not 0 <= pct <= 100:
            raise TranslateError("TABLESAMPLE percent must be between 0 and 100", sample_node)
        if pct < 100:
            raise TranslateError(
                "TABLESAMPLE(n PERCENT) below 100 is not supported: Hive samples whole HDFS "
                "blocks, which a text table on this engine does not have",
                sample_node,
            )
    elif sample_node.args.get("bucket_numerator") is not None:
        num, den = sample_node.args["bucket_numerator"], sample_node.args["bucket_denominator"]
        field = sample_node.args.get("bucket_field")
        if field is None or not isinstance(field, exp.Identifier | exp.Column):
            raise TranslateError(
                "TABLESAMPLE(BUCKET x OUT OF y ON col) needs a column (rand() is refused)", sample_node
            )
        x, y = int(num.this), int(den.this)
        if not 1 <= x <= y:
            raise TranslateError("TABLESAMPLE bucket x must be between 1 and y", sample_node)
        col = exp.column(field.name, quoted=True)
        cond = exp.EQ(
            this=exp.Anonymous(this="__hive_bucket", expressions=[col, exp.Literal.number(y)]),
            expression=exp.Literal.number(x - 1),
        )
        base = base.where(cond)
    else:
        raise TranslateError(
            "this TABLESAMPLE form is not supported (ROWS, 100 PERCENT and BUCKET are)", sample_node
        )
    return exp.Subquery(this=base, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def sort_by(select: exp.Select) -> None:
    """SORT BY / CLUSTER BY: Hive sorts within each reducer; on one engine that is ORDER BY
    (DISTRIBUTE BY alone orders nothing and is dropped)."""
    cluster = select.args.get("cluster")
    sort = select.args.get("sort")
    if cluster is not None and select.args.get("order") is None:
        select.set("order", exp.Order(expressions=[exp.Ordered(this=e.copy()) for e in cluster.expressions]))
    elif sort is not None and select.args.get("order") is None:
        select.set("order", exp.Order(expressions=[o.copy() for o in sort.expressions]))
    for key in ("cluster", "sort", "distribute"):
        select.set(key, None)


def grouping(group: exp.Group) -> None:
    """`GROUP BY a, b WITH ROLLUP|WITH CUBE|GROUPING SETS (...)` in DuckDB's spelling."""
    keys = list(group.expressions)
    for arg, kind in (("rollup", exp.Rollup), ("cube", exp.Cube)):
        marks = group.args.get(arg)
        if marks and not any(m.expressions for m in marks):
            group.set(arg, None)
            group.set("expressions", [kind(expressions=keys)])
            return
    sets = group.args.get("grouping_sets")
    if sets and keys:
        group.set("grouping_sets", None)
        group.set("expressions", list(sets))


def group_keys(group: exp.Group) -> list[exp.Expr]:
    """The plain key expressions of a GROUP BY (inside ROLLUP, CUBE, GROUPING SETS too)."""
    out: list[exp.Expr] = []
    seen: set[str] = set()
    for e in group.expressions:
        inner = e.find_all(exp.Column) if isinstance(e, exp.Rollup | exp.Cube | exp.GroupingSets) else [e]
        for k in inner:
            if k.sql() not in seen:
                seen.add(k.sql())
                out.append(k)
    return out


def grouping_id(select: exp.Select) -> None:
    """Hive's GROUPING__ID (2.3 and later: a bit per GROUP BY key, 1 when the key is aggregated
    away, the first key the most significant bit) is the SQL standard's grouping(keys...)."""
    group = select.args.get("group")
    if not isinstance(group, exp.Group):
        return
    keys = [k for k in group.expressions if not isinstance(k, exp.Rollup | exp.Cube | exp.GroupingSets)]
    if not keys:
        keys = group_keys(group)

    in_sets = {c.sql() for s in group.args.get("grouping_sets") or [] for c in s.find_all(exp.Column)}
    # A GROUP BY key that no grouping set names is NULL on every row in Hive; DuckDB refuses a bare
    # reference to it, so it becomes an aggregate that is always NULL (of the key's type).
    unset = {k.sql() for k in keys if in_sets and isinstance(k, exp.Column) and k.sql() not in in_sets}

    def grouping() -> exp.Expr:
        if not unset:
            return exp.Grouping(expressions=[k.copy() for k in keys])
        # The unset keys' bits are always 1; the others come from grouping() of the set keys.
        bits = [
            exp.Literal.number(1 << (len(keys) - 1 - i))
            if k.sql() in unset
            else exp.BitwiseLeftShift(
                this=exp.Grouping(expressions=[k.copy()]), expression=exp.Literal.number(len(keys) - 1 - i)
            )
            for i, k in enumerate(keys)
        ]
        total: exp.Expr = bits[0]
        for b in bits[1:]:
            total = exp.Add(this=total, expression=b)
        return exp.Paren(this=total)

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.lower() == "grouping__id":
            return grouping()
        return node

    def null_key(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.sql() in unset and not node.find_ancestor(exp.AggFunc):
            return exp.Case(ifs=[exp.If(this=exp.false(), true=exp.AnyValue(this=node.copy()))])
        return node

    for arg in ("expressions", "having", "order"):
        value = select.args.get(arg)
        if isinstance(value, list):
            select.set(arg, [v.transform(swap).transform(null_key) for v in value])
        elif value is not None:
            select.set(arg, value.transform(swap).transform(null_key))

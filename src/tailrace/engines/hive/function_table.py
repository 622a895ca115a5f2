"""Hive functions that are one DuckDB template each: name -> (argument counts, template).

`_0`, `_1`... in a template stand for the call's arguments (see `functions.template`).
"""

from __future__ import annotations

# Anonymous calls: Hive name -> (argument counts, DuckDB template)
BY_NAME: dict[str, tuple[tuple[int, ...], str]] = {
    "find_in_set": ((2,), "__hive_find_in_set(_0, _1)"),
    "format_number": ((2,), "__hive_format_number(CAST(_0 AS DOUBLE), CAST(_1 AS BIGINT))"),
    "sentences": ((1, 2, 3), "__hive_sentences(_0)"),
    "std": ((1,), "stddev_pop(CAST(_0 AS DOUBLE))"),
    "bround": ((1, 2), "__hive_bround(CAST(_0 AS DOUBLE), 0)"),
    "pmod": ((2,), "((_0 % nullif(_1, 0)) + _1) % nullif(_1, 0)"),
    "conv": ((3,), "__hive_conv(CAST(_0 AS VARCHAR), _1, _2)"),
    "bin": ((1,), "ltrim(bin(CAST(_0 AS BIGINT)), '0') || CASE WHEN _0 = 0 THEN '0' ELSE '' END"),
    "e": ((0,), "exp(CAST(1 AS DOUBLE))"),
    "crc32": ((1,), "__hive_crc32(CAST(_0 AS VARCHAR))"),
    "isnull": ((1,), "(_0 IS NULL)"),
    "isnotnull": ((1,), "(_0 IS NOT NULL)"),
    "map_values": ((1,), "map_values(_0)"),
    "positive": ((1,), "(_0)"),
    "octet_length": ((1,), "octet_length(encode(_0))"),
    "shiftleft": ((2,), "(_0 << _1)"),
    "shiftright": ((2,), "(_0 >> _1)"),
    "from_utc_timestamp": ((2,), "timezone(_1, timezone('UTC', __hive_ts(_0)))"),
    "to_utc_timestamp": ((2,), "timezone('UTC', timezone(_1, __hive_ts(_0)))"),
    "dayofweek": ((1,), "dayofweek(__hive_date(_0)) + 1"),
    "weekday": ((1,), "isodow(__hive_date(_0)) - 1"),
    "field": ((), ""),
    "get_json_object": ((2,), ""),
    "regexp": ((2,), "regexp_matches(_0, _1)"),
    "rlike": ((2,), "regexp_matches(_0, _1)"),
    "initcap": ((1,), "__hive_initcap(_0)"),
    "date_format": ((2,), "__hive_date_format(CAST(_0 AS VARCHAR), _1)"),
    "variance": ((1,), "var_pop(CAST(_0 AS DOUBLE))"),
    "log10": ((1,), "CASE WHEN _0 > 0 THEN log10(CAST(_0 AS DOUBLE)) END"),
    "log2": ((1,), "CASE WHEN _0 > 0 THEN ln(CAST(_0 AS DOUBLE)) / ln(2) END"),
    "substring_index": (
        (3,),
        "CASE WHEN _2 = 0 THEN '' WHEN _2 > 0 THEN array_to_string(string_split(_0, _1)[1:_2], _1) "
        "ELSE array_to_string(string_split(_0, _1)[_2:], _1) END",
    ),
    "elt": ((), ""),
    "printf": ((), ""),
    "negative": ((1,), "(-(_0))"),
    "quote": ((1,), "chr(39) || replace(_0, chr(39), chr(92) || chr(39)) || chr(39)"),
    "width_bucket": (
        (4,),
        "CASE WHEN _0 < _1 THEN 0 WHEN _0 >= _2 THEN _3 + 1 "
        "ELSE CAST(floor((_0 - _1) * _3 / (_2 - _1)) AS BIGINT) + 1 END",
    ),
    "hash": ((1,), "__hive_hash(_0)"),
    "mask": (
        (1, 4),
        "regexp_replace(regexp_replace(regexp_replace(_0, '[A-Z]', 'X', 'g'), '[a-z]', 'x', 'g'), '[0-9]', 'n', 'g')",
    ),
    "current_database": ((0,), "'default'"),
    "assert_true": ((1,), "CASE WHEN _0 THEN NULL ELSE error('ASSERT_TRUE(): assertion failed.') END"),
    "mask_first_n": ((1, 2), "__hive_mask_first_n(CAST(_0 AS VARCHAR), 4)"),
    "mask_last_n": ((1, 2), "__hive_mask_last_n(CAST(_0 AS VARCHAR), 4)"),
    "mask_show_first_n": ((1, 2), "__hive_mask_show_first_n(CAST(_0 AS VARCHAR), 4)"),
    "mask_show_last_n": ((1, 2), "__hive_mask_show_last_n(CAST(_0 AS VARCHAR), 4)"),
    "mask_hash": ((1,), "sha256(CAST(_0 AS VARCHAR))"),
    "shiftrightunsigned": ((2,), "CAST((CAST(_0 AS BIGINT) & 4294967295) >> _1 AS BIGINT)"),
    "to_unix_timestamp": ((1,), "CAST(epoch(__hive_ts(_0)) AS BIGINT)"),
    "aes_encrypt": ((2,), "__hive_aes_encrypt(CAST(_0 AS VARCHAR), CAST(_1 AS VARCHAR))"),
    "aes_decrypt": ((2,), "__hive_aes_decrypt(CAST(_0 AS BLOB), CAST(_1 AS VARCHAR))"),
    "regr_slope": ((2,), "regr_slope(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
    "regr_intercept": ((2,), "regr_intercept(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
    "regr_r2": ((2,), "regr_r2(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
    "regr_count": ((2,), "regr_count(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
    "regr_avgx": ((2,), "regr_avgx(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
    "regr_avgy": ((2,), "regr_avgy(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
    "regr_sxx": ((2,), "regr_sxx(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
    "regr_syy": ((2,), "regr_syy(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
    "regr_sxy": ((2,), "regr_sxy(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))"),
}

"""Prebuilt statements run straight on SQLite's driver, without SQLAlchemy's execution machinery.

On the push path a statement costs SQLite 5-30 us, and SQLAlchemy's per-execution work around it
(execution context, parameter processing, result object) two to four times that: about 40% of
the server's CPU per small image (docs/performance.md). For statements built once at import and
marked with :func:`prebuilt`, :class:`StatementPlans` compiles the SQL once, with SQLAlchemy's
own type processors for parameters and result columns, and then runs it on the ``sqlite3``
connection of the same transaction. Anything it does not cover (other statements, empty
``IN`` lists) goes through SQLAlchemy as before; PostgreSQL always does.
"""

from __future__ import annotations

import keyword
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import CompoundSelect, Delete, Insert, Select, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound

PREBUILT_OPTION = "portside_prebuilt"

Statement = TypeVar("Statement", Select[Any], CompoundSelect[Any], Insert, Update, Delete)
Processor = Callable[[Any], Any] | None


def prebuilt(statement: Statement) -> Statement:
    """Mark a statement built once (at import) as one to run on SQLite's driver directly."""
    return statement.execution_options(**{PREBUILT_OPTION: True})


class FastResult:
    """The parts of SQLAlchemy's ``Result`` that the stores use, over rows already fetched."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        """Every row."""
        return list(self._rows)

    def first(self) -> Any:
        """The first row, or ``None``."""
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any:
        """The only row, ``None`` without one; more than one is an error."""
        if len(self._rows) > 1:
            raise MultipleResultsFound("more than one row where at most one was expected")
        return self.first()

    def one(self) -> Any:
        """The only row; none or more than one is an error."""
        row = self.one_or_none()
        if row is None:
            raise NoResultFound("no row where one was expected")
        return row

    def scalar(self) -> Any:
        """The first column of the first row, or ``None``."""
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        """The first column of the only row."""
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        """The first column of the only row, ``None`` without one."""
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> FastResult:
        """The first column of each row."""
        return FastResult([row[0] for row in self._rows], self.rowcount)


@dataclass(frozen=True)
class _Plan:
    """One statement compiled for SQLite: SQL text, where each ``?`` gets its value, how rows come back."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    bind_processors: tuple[Processor, ...]
    expanding: frozenset[str]
    row_type: Callable[..., Any] | None
    result_processors: tuple[Processor, ...]

    def run(self, connection: sqlite3.Connection, parameters: Any) -> FastResult | None:
        """Execute on the driver's connection; ``None`` where SQLAlchemy must do it instead."""
        if isinstance(parameters, list):
            if not parameters or self.expanding or self.row_type is not None:
                return None
            batch = [self._values(one) for one in parameters]
            if any(sql is None for sql, _ in batch):
                return None
            cursor = self._execute(connection.executemany, self.sql, [values for _, values in batch], parameters)
            return FastResult([], cursor.rowcount)
        sql, values = self._values(parameters or {})
        if sql is None:
            return None
        cursor = self._execute(connection.execute, sql, values, parameters)
        if self.row_type is None:
            return FastResult([], cursor.rowcount)
        processors = self.result_processors
        make = self.row_type
        fetched = cursor.fetchall()
        if any(processors):
            rows = [make(*map(_apply, processors, row)) for row in fetched]
        else:
            rows = [make(*row) for row in fetched]
        return FastResult(rows, cursor.rowcount)

    def _values(self, parameters: dict[str, Any]) -> tuple[str | None, list[Any]]:
        values: list[Any] = []
        sql = self.sql
        for name, process in zip(self.names, self.bind_processors, strict=True):
            if name in parameters:
                value = parameters[name]
            elif name in self.defaults:
                value = self.defaults[name]
            else:
                return None, []  # a missing parameter: SQLAlchemy's error says which
            if name in self.expanding:
                items = list(value)
                if not items:
                    return None, []  # SQLAlchemy renders an empty IN its own way
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * len(items)), 1)
                values.extend(items if process is None else [process(item) for item in items])
            else:
                values.append(value if process is None else process(value))
        return sql, values

    @staticmethod
    def _execute(run: Callable[[str, Any], sqlite3.Cursor], sql: str, values: Any, parameters: Any) -> sqlite3.Cursor:
        try:
            return run(sql, values)
        except sqlite3.Error as exc:
            # The same exception SQLAlchemy would raise (IntegrityError, OperationalError, ...).
            raise DBAPIError.instance(sql, parameters, exc, sqlite3.Error) from exc


def _compile(statement: Any, dialect: Dialect) -> _Plan | None:
    if not isinstance(statement, (Select, CompoundSelect, Insert, Update, Delete)):
        return None
    compiled = statement.compile(dialect=dialect)
    if compiled.positiontup is None:
        return None
    names = tuple(compiled.positiontup)
    binds = {name: compiled.binds[name] for name in names}
    if any(bind.callable is not None for bind in binds.values()):
        return None
    processors = tuple(binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
    if isinstance(statement, (Select, CompoundSelect)):
        columns = [(str(key), column.type) for key, column in statement.selected_columns.items()]
    else:
        columns = [(str(column["name"]), column["type"]) for column in statement.returning_column_descriptions]
    row_type: Callable[..., Any] | None = None
    result_processors: tuple[Processor, ...] = ()
    if columns:
        keys = [key for key, _ in columns]
        if len(set(keys)) != len(keys) or not all(key.isidentifier() and not keyword.iskeyword(key) for key in keys):
            return None
        row_type = namedtuple("Row", keys)  # type: ignore[misc,no-redef]
        result_processors = tuple(type_.dialect_impl(dialect).result_processor(dialect, None) for _, type_ in columns)
    return _Plan(
        sql=compiled.string,
        names=names,
        defaults={name: bind.value for name, bind in binds.items() if bind.value is not None},
        bind_processors=processors,
        expanding=frozenset(name for name, bind in binds.items() if bind.expanding),
        row_type=row_type,
        result_processors=result_processors,
    )


def _apply(process: Processor, value: Any) -> Any:
    return value if process is None else process(value)


class StatementPlans:
    """SQLite plans of the prebuilt statements, compiled on first use; one per metadata store."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        # Keyed by id(): prebuilt statements live for the whole process, and each entry keeps its
        # statement alive, so an id is never reused for another statement.
        self._plans: dict[int, tuple[Any, _Plan | None]] = {}

    def plan_for(self, statement: Any) -> _Plan | None:
        """The statement's plan; ``None`` if it is not prebuilt or cannot run on the driver directly."""
        entry = self._plans.get(id(statement))
        if entry is not None:
            return entry[1]
        options = getattr(statement, "get_execution_options", None)
        if options is None or not options().get(PREBUILT_OPTION):
            return None
        plan = _compile(statement, self._dialect)
        self._plans[id(statement)] = (statement, plan)
        return plan

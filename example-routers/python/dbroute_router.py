"""Write a dbroute router in Python the way you would write a Django
database router, and export it as the component contract's `router`
interface (wit/router.wit, world `routing`). docs/routers/python.md
describes it; reference.py is a complete router.

    import dbroute_router
    from dbroute_router import Refuse

    @dbroute_router.export
    class Router:
        deterministic = True                      # optional

        def setup(self, config, connections):     # optional
            ...

        def db_for_read(self, model, **hints):    # optional
            return "replica"                      # None: no opinion

        def db_for_write(self, model, **hints):   # optional
            raise Refuse("no writes today")

        def allow_relation(self, obj1, obj2, **hints): ...
        def allow_migrate(self, db, app_label, model_name=None, **hints): ...
        def state_changed(self, connections): ...

componentize-py finds the export by the name `Router`: decorate a class of
that name, or write `Router = dbroute_router.export(MyRouter)`.

- `model` is the operation's model: `.name`, `.table` and `.app` (None
  when not given), `.tags` (a list of strings).
- Hints are keyword arguments whose values are the hints' JSON decoded
  (str, int, float, bool, None, list, dict). A method that names a
  parameter `origin` gets the operation's origin there (the connection its
  row was read from, or None). A hint named like one of the method's own
  parameters is not passed.
- allow_relation's `obj1` and `obj2` have `.model` and `.db` (None for an
  object not saved yet). allow_migrate gets, for a model, its `.app` as
  `app_label`, its name as given (not lower-cased) as `model_name`, and the
  model itself as the hint `model`, as Django does; for an app asked about
  without a model, the label alone.
- db_for_read and db_for_write return a connection name to use, or None
  for no opinion; raising `Refuse("message")`, or returning one, refuses
  the operation. allow_relation and allow_migrate return True, False or
  None.
- state_changed(connections) is told the connections' state when it
  changes; connection_state() gives the last one at any time.
- Any other exception is a fault: the instance traps and the host drops it.

The router class is instantiated with no arguments when the host calls
`init`, then its `setup(config, connections)` runs, if it has one: the
configuration decoded from JSON (None when there is none) and the list of
registered connection names, `default` first. Raising `Refuse` there
refuses the load with its message.
"""

import json

from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    ConnectionState,
    Decision_Connection,
    Decision_NoOpinion,
    Decision_Refuse,
    Level,
    MigrationTarget_Model,
    Role,
)

__all__ = ["Refuse", "export", "log", "connection_state", "Level", "Role", "ConnectionState"]


class Refuse(Exception):
    """Raise it (or return it) from db_for_read or db_for_write to refuse
    the operation, or from setup to refuse the load, with `message`."""

    def __init__(self, message):
        super().__init__(message)
        self.message = str(message)


_LEVELS = {
    "error": Level.ERROR,
    "warn": Level.WARN,
    "info": Level.INFO,
    "debug": Level.DEBUG,
    "trace": Level.TRACE,
}


def log(level, message):
    """Writes `message` to the host's log. `level`: "error", "warn",
    "info", "debug", "trace", or a `Level`."""
    host.log(_LEVELS[level] if type(level) is str else level, str(message))


# The connections' state the host gave last: every registered connection,
# in the host's order, and the same by name.
_state = ()
_state_by_name = {}


def connection_state(name=None):
    """The connections' state the host gave last (a tuple of
    `ConnectionState`, empty before the first), or, given a name, that
    connection's state (None when the host did not mention it).
    A `ConnectionState` has `name`, `role` (`Role.PRIMARY`,
    `Role.REPLICA`), `replica_of`, `healthy` (None: not checked yet),
    `lag_ms` and `lag_bytes` (None: unknown, or a primary)."""
    if name is None:
        return _state
    return _state_by_name.get(name)


_NO_OPINION = Decision_NoOpinion()
# One answer object per connection name a router has returned: most
# routers return a handful of names, so an answer is made once.
_uses = {}


def _answer(r):
    if r is None:
        return _NO_OPINION
    if type(r) is str:
        d = _uses.get(r)
        if d is None:
            d = Decision_Connection(r)
            if len(_uses) < 256:
                _uses[r] = d
        return d
    if isinstance(r, Refuse):
        return Decision_Refuse(r.message)
    raise TypeError(
        "a router answers a connection name (str), None or Refuse, not %r" % (r,)
    )


_loads = json.loads


def _hints(hints, reserved):
    """The hints as keyword arguments, their values decoded."""
    kw = {}
    for h in hints:
        k = h.key
        if k in reserved:
            continue
        v = h.value
        # A string without escapes, the commonest hint, skips the decoder.
        if v[:1] == '"' and "\\" not in v:
            kw[k] = v[1:-1]
        else:
            kw[k] = _loads(v)
    return kw


def _names(method):
    """The names of `method`'s parameters but `*args` and `**kwargs`."""
    code = getattr(getattr(method, "__func__", method), "__code__", None)
    if code is None:
        return frozenset()
    n = code.co_argcount + code.co_kwonlyargcount
    return frozenset(code.co_varnames[:n])


def _no_opinion(*_args):
    """A decision without an opinion, for a router without the method."""
    return _NO_OPINION


def _no_answer(*_args):
    """allow_relation or allow_migrate without an opinion."""
    return None


# Each maker below turns one of the author's bound methods into the
# export's method, set on the export class by init: a call goes from the
# generated bindings to the author's method through one function.


def _route(method):
    """db_for_read or db_for_write."""
    if method is None:
        return _no_opinion
    reserved = _names(method)
    origin = "origin" in reserved

    def route(_self, op):
        hints = op.hints
        try:
            if hints:
                kw = _hints(hints, reserved)
                if origin:
                    kw["origin"] = op.origin
                r = method(op.model, **kw)
            elif origin:
                r = method(op.model, origin=op.origin)
            else:
                r = method(op.model)
        except Refuse as e:
            return Decision_Refuse(e.message)
        return _answer(r)

    return route


def _relation(method):
    if method is None:
        return _no_answer
    reserved = _names(method)

    def allow_relation(_self, a, b, hints):
        if hints:
            r = method(a, b, **_hints(hints, reserved))
        else:
            r = method(a, b)
        if r is None or r is True or r is False:
            return r
        raise TypeError("allow_relation answers True, False or None, not %r" % (r,))

    return allow_relation


def _migrate(method):
    if method is None:
        return _no_answer
    reserved = _names(method) | {"model", "model_name"}

    def allow_migrate(_self, db, target, hints):
        kw = _hints(hints, reserved) if hints else {}
        if type(target) is MigrationTarget_Model:
            model = target.value
            r = method(db, model.app, model_name=model.name, model=model, **kw)
        else:
            r = method(db, target.value, **kw)
        if r is None or r is True or r is False:
            return r
        raise TypeError("allow_migrate answers True, False or None, not %r" % (r,))

    return allow_migrate


def export(cls):
    """Makes the component's `Router` export out of a Django-like router
    class: use it as a decorator on a class named `Router`."""
    deterministic = getattr(cls, "deterministic", False) is True

    class Router:
        __doc__ = cls.__doc__
        __slots__ = ()

        def init(self, config, connections):
            try:
                r = cls()
                setup = getattr(r, "setup", None)
                if setup is not None:
                    setup(_loads(config), connections)
            except Refuse as e:
                raise Err(e.message)
            Router.db_for_read = _route(getattr(r, "db_for_read", None))
            Router.db_for_write = _route(getattr(r, "db_for_write", None))
            Router.allow_relation = _relation(getattr(r, "allow_relation", None))
            Router.allow_migrate = _migrate(getattr(r, "allow_migrate", None))
            Router.on_state = getattr(r, "state_changed", None)

        def deterministic(self):
            return deterministic

        # Before init (which the host always calls first): no opinion.
        db_for_read = db_for_write = _no_opinion
        allow_relation = allow_migrate = _no_answer
        on_state = None

        def state_changed(self, connections):
            global _state, _state_by_name
            _state = tuple(connections)
            _state_by_name = {c.name: c for c in _state}
            if Router.on_state is not None:
                Router.on_state(_state)

    Router.__qualname__ = Router.__name__ = cls.__name__
    return Router

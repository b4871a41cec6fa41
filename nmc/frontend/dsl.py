"""The nmc network description language: source text -> :class:`nmc.ir.Network`.

Language reference: docs/dsl.md. Grammar: grammar/nmc.lark.

Three steps turn text into a network:

1. lark parses the text (LALR). A syntax error becomes one :class:`DslError` naming the offending
   token and the tokens that would have been accepted.
2. A small evaluator turns each expression into a value: a number, a string, a bare name such as
   ``mixed``, or a call such as ``uniform(0, 1)``. Calls stay unevaluated until the statement that
   uses them knows the array shape and random stream they need.
3. A builder walks the statements in source order, resolves names, checks arguments, materialises
   arrays and adds populations, projections and probes to a :class:`Network`. Finally the IR
   verifier runs; its first complaint is reported at the statement that created the object.

Every error is a :class:`DslError` located ``file:line:col`` at the offending token.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Union

import numpy as np
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from ..errors import DslError, IrError
from ..ir.learning import TRACES, learning_spec, parse_rule
from ..ir.models import NEURON_MODELS, PROBE_VARIABLES, NeuronModel
from ..ir.network import SIGNS, Network, Population, Probe, Projection
from ..ir.verify import verify_problems
from ..resources import data_dir

__all__ = ["parse_dsl", "load_dsl"]

#: Largest array (in elements) the front end will generate; anything bigger is almost certainly a
#: typo in a population size, and would otherwise end in a MemoryError traceback.
MAX_ARRAY_ELEMENTS = 1 << 28

#: First word of the seed sequence of each kind of random stream (see :func:`_derived_rng`).
_STREAM_PROJECTION = 1
_STREAM_POPULATION = 2
_STREAM_BACKPROP = 3

#: Named neurons every file knows, as (model, parameters); used like a ``neuron`` definition.
_BUILTIN_NEURONS: dict[str, tuple[str, dict[str, int | float]]] = {
    # The memoryless unit of the synfire-gated backprop circuit (reference seeds.md §1.1): no
    # current or voltage memory between steps, and a bias of -8192 * 64 so that it fires only in
    # the step a gate cancels the bias.
    "graded": ("cuba_lif", {"decay_u": 4095, "decay_v": 4096, "threshold": 1024, "bias": -524288,
                            "refractory": 1}),
}


# -- public API -----------------------------------------------------------------------------------

def parse_dsl(text: str, filename: str = "<string>", base_dir: Path | None = None) -> Network:
    """Build a :class:`Network` from DSL source ``text``.

    ``filename`` is used in error locations (``file:line:col``) and, unless it looks like a
    pseudo-name such as ``<string>``, its stem is the default network name. ``npz("...")`` paths
    resolve against ``base_dir``; by default the directory of ``filename`` (the current directory
    for pseudo-names).

    Raises :class:`nmc.errors.DslError` for any syntax or semantic error.
    """
    pseudo = filename.startswith("<")
    if base_dir is None:
        base_dir = Path.cwd() if pseudo else Path(filename).parent
    default_name = "network" if pseudo else Path(filename).stem
    tree = _parse_tree(text, filename)
    return _Builder(filename, Path(base_dir), default_name).build(tree)


def load_dsl(path: str | Path) -> Network:
    """Read and build the DSL file ``path``; npz paths in it are relative to its directory."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DslError(f"cannot read DSL file: {exc.strerror or exc}", location=str(path)) from None
    except UnicodeDecodeError:
        raise DslError("DSL file is not UTF-8 text", location=str(path)) from None
    return parse_dsl(text, filename=str(path), base_dir=path.parent)


# -- parsing --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    """The parser, built once: constructing LALR tables is far slower than parsing a file."""
    grammar = (data_dir("grammar") / "nmc.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True)


def _parse_tree(text: str, filename: str) -> Tree:
    try:
        return _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, filename) from None


# Readable names of the grammar's pattern terminals; keywords and punctuation print as themselves.
_TERMINAL_NAMES = {
    "$END": "end of input",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name.lower()


def _expected_list(terminals: Iterable[str]) -> str:
    names = set(terminals)
    if {"INT", "FLOAT"} <= names:
        names.discard("INT")  # "a number" covers both; listing "an integer" too only confuses
    words = {_describe_terminal(n) for n in names}
    # Literal tokens first (sorted), then descriptions such as "a name".
    ordered = sorted(words, key=lambda w: (not w.startswith("'"), w))
    if len(ordered) == 1:
        return f"expected {ordered[0]}"
    return "expected one of: " + ", ".join(ordered)


def _syntax_error(exc: UnexpectedInput, filename: str) -> DslError:
    """One-line error for a lark parse failure."""
    expected: Iterable[str] = ()
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            # lark gives the end marker the position of the last token; point just past it,
            # where the missing text belongs.
            line = tok.end_line or exc.line
            col = tok.end_column or exc.column
            what = "unexpected end of input"
        else:
            line, col = tok.line, tok.column
            what = f"unexpected string {tok.value}" if tok.type == "STRING" else f"unexpected '{tok.value}'"
        expected = exc.accepts or exc.expected or ()
    elif isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        if exc.char == '"':  # the only way a quote fails to lex; what was expected does not matter
            return DslError("unterminated string (strings end with \" on the same line)",
                            location=f"{filename}:{line}:{col}")
        what = f"unexpected character {exc.char!r}"
        expected = exc.allowed or ()
    elif isinstance(exc, UnexpectedEOF):  # Earley only; kept so a parser switch stays safe
        line, col = exc.line, exc.column
        what = "unexpected end of input"
        expected = exc.expected or ()
    else:
        line, col = exc.line, exc.column
        what = "syntax error"
    message = what if not expected else f"{what}, {_expected_list(expected)}"
    return DslError(message, location=f"{filename}:{max(line, 1)}:{max(col, 1)}")


# -- values ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pos:
    line: int
    col: int


@dataclass(frozen=True)
class _Num:
    value: int | float  # an int only when written with integers and + - * (never /)
    pos: _Pos


@dataclass(frozen=True)
class _Text:
    value: str
    pos: _Pos


@dataclass(frozen=True)
class _Word:
    """A bare name used as a value, such as ``mixed`` in ``sign = mixed``."""

    name: str
    pos: _Pos


@dataclass(frozen=True)
class _Argument:
    name: str | None  # None: positional
    value: "_Value"
    pos: _Pos  # of the name for named arguments, of the value otherwise


@dataclass(frozen=True)
class _Call:
    name: str
    pos: _Pos
    arguments: tuple[_Argument, ...]


_Value = Union[_Num, _Text, _Word, _Call]


def _describe(value: _Value) -> str:
    """A value as it appears in error messages."""
    if isinstance(value, _Num):
        return repr(value.value)
    if isinstance(value, _Text):
        return f'the string "{value.value}"'
    if isinstance(value, _Word):
        return f"the name '{value.name}'"
    return f"'{value.name}(...)'"


def _token_pos(tok: Token) -> _Pos:
    return _Pos(tok.line, tok.column)


def _tree_pos(tree: Tree) -> _Pos:
    return _Pos(tree.meta.line, tree.meta.column)


def _has_named_argument(call: Tree, name: str) -> bool:
    """Whether a call's syntax tree passes an argument ``name = ...`` (without evaluating it)."""
    arg_list = call.children[1]
    return arg_list is not None and any(
        isinstance(arg, Tree) and arg.data == "keyword_argument" and arg.children[0].value == name
        for arg in arg_list.children)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class _Signature:
    """The arguments a call accepts, for binding and error messages."""

    name: str
    params: tuple[str, ...]  # in positional order
    required: frozenset[str] = frozenset()
    positional: int = 0  # how many leading params may be passed without a name


_INITIALISERS: dict[str, _Signature] = {
    "constant": _Signature("constant", ("value",), frozenset({"value"}), 1),
    "uniform": _Signature("uniform", ("lo", "hi", "seed"), frozenset({"lo", "hi"}), 3),
    "randint": _Signature("randint", ("lo", "hi", "seed"), frozenset({"lo", "hi"}), 3),
    "normal": _Signature("normal", ("mean", "std", "seed"), frozenset({"mean", "std"}), 3),
    "npz": _Signature("npz", ("file", "key"), frozenset({"file"}), 2),
}

_SYNAPSE_ARGS = ("delay", "sign", "exponent", "rule", "reward")
_CONNECTIVITY: dict[str, _Signature] = {
    "dense": _Signature("dense", ("weights",) + _SYNAPSE_ARGS, frozenset({"weights"}), 1),
    "one_to_one": _Signature("one_to_one", ("weights",) + _SYNAPSE_ARGS, frozenset({"weights"}), 1),
    "one_to_all": _Signature("one_to_all", ("weights",) + _SYNAPSE_ARGS, frozenset({"weights"}), 1),
    # Either p (+ weights, seed) or file; the builder checks which combination was given.
    "sparse": _Signature("sparse", ("p", "weights", "seed", "file") + _SYNAPSE_ARGS, frozenset(), 2),
}

# Learning: `rule NAME = learning(...)`, its traces, and `learn backprop(...)`.
_LEARNING = _Signature("learning", ("dw", "epoch") + TRACES, frozenset({"dw"}), 1)
_TRACE = _Signature("trace", ("impulse", "tau"), frozenset({"impulse", "tau"}), 2)
_BACKPROP = _Signature("backprop", ("target", "window", "window_high", "window_hidden", "margin", "error_threshold",
                                    "weights", "mode", "name"),
                       frozenset({"target"}))
_HE_NORMAL = _Signature("he_normal", ("seed",))
_BACKPROP_MODES = ("train", "inference")
_LEARNING_CONSTRUCTS = ("backprop",)


# -- the builder ----------------------------------------------------------------------------------

@dataclass
class _NeuronSet:
    """A ``neuron NAME = model(...)`` definition: a model and parameter values."""

    model: NeuronModel
    params: dict[str, int | float | _Call]  # a _Call is a per-neuron initialiser, drawn per population
    pos: _Pos


@dataclass
class _Rule:
    """A ``rule NAME = learning(...)`` definition and where its parts are written."""

    learning: dict[str, object]  # {"rule", "epoch", "traces"}: Projection.learning without "reward"
    pos: _Pos  # of the name
    dw_pos: _Pos
    epoch_pos: _Pos
    trace_pos: dict[str, _Pos]


@dataclass
class _Builder:
    filename: str
    base_dir: Path
    default_name: str
    seed: int = 0
    net: Network = field(default_factory=Network)
    neurons: dict[str, _NeuronSet] = field(default_factory=dict)
    #: Statement position of every created object, keyed ("population" | "projection" | "probe", name);
    #: used to locate problems found by the IR verifier.
    created: dict[tuple[str, str], _Pos] = field(default_factory=dict)
    outputs: dict[str, _Pos] = field(default_factory=dict)
    #: Where each population / neuron is defined, to explain a use before the definition.
    declared: dict[tuple[str, str], _Pos] = field(default_factory=dict)
    npz_cache: dict[tuple[Path, str], np.ndarray] = field(default_factory=dict)
    rules: dict[str, _Rule] = field(default_factory=dict)
    #: ``net.attrs["schedule"]`` once a ``schedule cycle`` statement is seen (None: no schedule).
    schedule: dict[str, object] | None = None
    #: Where each (statement kind, key) of the schedule was given, to report repeats.
    schedule_seen: dict[tuple, _Pos] = field(default_factory=dict)
    learn_pos: _Pos | None = None

    # -- errors -----------------------------------------------------------------------------------
    def error(self, message: str, pos: _Pos) -> DslError:
        return DslError(message, location=f"{self.filename}:{pos.line}:{pos.col}")

    # -- driver -----------------------------------------------------------------------------------
    def build(self, tree: Tree) -> Network:
        statements = list(tree.children)
        self._global_settings(statements)
        self._collect_declarations(statements)
        handlers = {
            "neuron_stmt": self._neuron,
            "input_stmt": self._input,
            "population_stmt": self._population,
            "output_stmt": self._output,
            "connect_stmt": self._connect,
            "probe_stmt": self._probe,
            "rule_stmt": self._rule,
            "gate_stmt": self._gate,
            "veto_stmt": self._veto,
            "inject_stmt": self._inject,
            "readout_stmt": self._readout,
            "learn_stmt": self._learn,
        }
        for stmt in statements:
            handler = handlers.get(stmt.data)
            if handler is not None:
                handler(stmt)
        self._verify()
        return self.net

    def _global_settings(self, statements: list[Tree]) -> None:
        """``network``, ``seed`` and ``schedule cycle`` apply to the whole file wherever they appear,
        at most once each."""
        name, seen = self.default_name, {}
        cycle = None
        keywords = {"network_stmt": "network", "seed_stmt": "seed", "schedule_stmt": "schedule cycle"}
        for stmt in statements:
            keyword = keywords.get(stmt.data)
            if keyword is None:
                continue
            pos = _tree_pos(stmt)
            if keyword in seen:
                raise self.error(f"'{keyword}' is given twice (first at line {seen[keyword].line})", pos)
            seen[keyword] = pos
            if keyword == "network":
                tok = stmt.children[0]
                name = tok.value[1:-1] if tok.type == "STRING" else tok.value
            elif keyword == "seed":
                self.seed = self._as_int(self._evaluate(stmt.children[0]), "seed", minimum=0)
            else:
                cycle = self._as_int(self._evaluate(stmt.children[0]), "cycle", minimum=1)
        self.net = Network(name, {"seed": self.seed})
        if cycle is not None:
            self.schedule = {"cycle": cycle, "gates": [], "vetoes": [], "inputs": {}}
            self.net.attrs["schedule"] = self.schedule

    def _collect_declarations(self, statements: list[Tree]) -> None:
        kinds = {"neuron_stmt": "neuron", "input_stmt": "population", "population_stmt": "population",
                 "rule_stmt": "rule"}
        for stmt in statements:
            kind = kinds.get(stmt.data)
            if kind is not None:
                self.declared.setdefault((kind, stmt.children[0].value), _tree_pos(stmt))

    def _verify(self) -> None:
        """Run the IR verifier as a safety net for anything the statements did not catch."""
        problems = verify_problems(self.net)
        if not problems:
            return
        where, message = problems[0]
        m = re.fullmatch(r"(population|projection|probe) '(.*)'", where)
        pos = self.created.get((m.group(1), m.group(2))) if m else None
        if pos is None:
            raise DslError(f"{where}: {message}", location=self.filename)
        raise self.error(message, pos)

    # -- statements -------------------------------------------------------------------------------
    def _neuron(self, stmt: Tree) -> None:
        name_tok, ref = stmt.children
        name, pos = name_tok.value, _token_pos(name_tok)
        if name in NEURON_MODELS:
            raise self.error(f"neuron '{name}' would hide the built-in neuron model of that name", pos)
        if name in _BUILTIN_NEURONS:
            raise self.error(f"neuron '{name}' is built in", pos)
        if name in self.neurons:
            raise self.error(f"neuron '{name}' is defined twice (first at line {self.neurons[name].pos.line})", pos)
        model, params = self._model_ref(ref)
        self.neurons[name] = _NeuronSet(model, params, pos)

    def _input(self, stmt: Tree) -> None:
        name_tok, size_expr = stmt.children
        self._check_new_population(name_tok)
        size = self._as_int(self._evaluate(size_expr), "population size", minimum=1)
        self._add_population(Population(name_tok.value, size, "input", {}, role="input"), stmt)

    def _population(self, stmt: Tree) -> None:
        name_tok, size_expr, ref = stmt.children
        self._check_new_population(name_tok)
        size = self._as_int(self._evaluate(size_expr), "population size", minimum=1)
        model, given = self._model_ref(ref)
        params: dict[str, object] = dict(model.defaults())
        rng = self._derived_rng(_STREAM_POPULATION, len(self.net.populations))
        for key, value in given.items():
            if isinstance(value, _Call):  # a per-neuron initialiser, e.g. bias = uniform(0, 10)
                value = self._initialise(value, (size,), rng, f"{key} of population '{name_tok.value}'", key)
            params[key] = value
        self._add_population(Population(name_tok.value, size, model.name, params), stmt)

    def _output(self, stmt: Tree) -> None:
        for tok in stmt.children:
            pop = self._lookup_population(tok)
            pos = _token_pos(tok)
            if pop.is_input:
                raise self.error(f"'{pop.name}' is an input population; it cannot also be an output", pos)
            if pop.name in self.outputs:
                raise self.error(f"population '{pop.name}' is already an output "
                                 f"(line {self.outputs[pop.name].line})", pos)
            self.outputs[pop.name] = pos
            pop.role = "output"

    def _probe(self, stmt: Tree) -> None:
        pop_tok, var_tok = stmt.children
        pop = self._lookup_population(pop_tok)
        allowed = PROBE_VARIABLES.get(pop.model, ("spikes",))
        if var_tok.value not in allowed:
            raise self.error(f"cannot probe '{var_tok.value}' of population '{pop.name}': model '{pop.model}' "
                             f"allows {', '.join(allowed)}", _token_pos(var_tok))
        name = f"{pop.name}.{var_tok.value}"
        if ("probe", name) in self.created:
            raise self.error(f"probe '{name}' is defined twice (first at line {self.created['probe', name].line})",
                             _tree_pos(stmt))
        self.net.add_probe(Probe(name, pop.name, var_tok.value))
        self.created["probe", name] = _tree_pos(stmt)

    def _connect(self, stmt: Tree) -> None:
        pre_tok, post_tok, name_tok, call_tree = stmt.children
        pre, post = self._lookup_population(pre_tok), self._lookup_population(post_tok)
        if post.is_input:
            if _has_named_argument(call_tree, "rule"):
                name = name_tok.value if name_tok is not None else self.net.unique_projection_name(pre.name, post.name)
                raise self.error(f"plastic projection '{name}' cannot target input port '{post.name}'",
                                 _token_pos(post_tok))
            raise self.error(f"cannot connect into input population '{post.name}' (inputs are fed from data)",
                             _token_pos(post_tok))
        name = self._projection_name(name_tok, pre.name, post.name)
        call = self._call(call_tree)
        sig = _CONNECTIVITY.get(call.name)
        if sig is None:
            raise self.error(f"unknown connectivity '{call.name}' (known: {', '.join(sorted(_CONNECTIVITY))})"
                             f"{_did_you_mean(call.name, _CONNECTIVITY)}", call.pos)
        args = self._bind(call, sig)
        proj = Projection(name=name, pre=pre.name, post=post.name, connectivity=call.name,
                          weights=np.zeros(0), learning=self._plasticity(call, args),
                          **self._synapse_options(args))
        index = len(self.net.projections)  # fixes the projection's random stream
        if call.name == "sparse":
            self._sparse(proj, call, args, pre.size, post.size, index)
        else:
            self._regular(proj, call, args, pre, post, index)
        self.net.add_projection(proj)
        self.created["projection", name] = _tree_pos(stmt)

    # -- learning rules ---------------------------------------------------------------------------
    def _rule(self, stmt: Tree) -> None:
        """``rule NAME = learning(dw = "...", epoch = E, x1 = trace(impulse = I, tau = T), ...)``."""
        name_tok, call_tree = stmt.children
        name, pos = name_tok.value, _token_pos(name_tok)
        if name in self.rules:
            first = self.rules[name].pos.line
            raise self.error(f"learning rule '{name}' is defined twice (first at line {first})", pos)
        call = self._call(call_tree)
        if call.name != _LEARNING.name:
            raise self.error(f"unknown kind of rule '{call.name}' (known: learning)"
                             f"{_did_you_mean(call.name, [_LEARNING.name])}", call.pos)
        args = self._bind(call, _LEARNING)
        dw = self._as_text(args["dw"], "dw")
        epoch = self._as_int(args["epoch"], "epoch") if "epoch" in args else 1
        traces, trace_pos = {}, {}
        for key, value in args.items():
            if key in TRACES:
                traces[key] = self._trace(value, key)
                trace_pos[key] = value.pos
        rule = _Rule({"rule": dw.value, "epoch": epoch, "traces": traces}, pos, dw.pos,
                     args["epoch"].pos if "epoch" in args else pos, trace_pos)
        try:
            products = parse_rule(dw.value)
        except IrError as exc:
            raise self.error(exc.message, dw.pos) from None
        used = {factor for product in products for factor in product.factors}
        missing = sorted(used & set(TRACES) - set(traces))
        if missing:
            raise self.error(f"learning rule uses trace '{missing[0]}' but gives no impulse and tau for it "
                             f"(add {missing[0]} = trace(impulse = ..., tau = ...))", dw.pos)
        # The reward population is named by each plastic projection (connect ... reward = POP); a
        # stand-in lets the rule itself be checked here, where its mistakes are written.
        self._check_learning({**rule.learning, "reward": "?"}, rule, rule.pos)
        self.rules[name] = rule

    def _trace(self, value: _Value, key: str) -> list[int | float]:
        """``trace(impulse = I, tau = T)`` as [I, T] (ints where integral, as the IR stores them)."""
        if not (isinstance(value, _Call) and value.name == _TRACE.name):
            raise self.error(f"{key} must be trace(impulse = ..., tau = ...), got {_describe(value)}", value.pos)
        args = self._bind(value, _TRACE)
        numbers = [self._as_number(args[k], k) for k in ("impulse", "tau")]
        return [int(x) if float(x).is_integer() else float(x) for x in numbers]

    def _check_learning(self, learning: dict[str, object], rule: _Rule, pos: _Pos) -> None:
        """Run the IR's check of a ``learning`` dict; its complaint is reported where the faulty part
        of the rule is written (the rule string, epoch or trace), else at ``pos``."""
        try:
            learning_spec(learning, "learning")
        except IrError as exc:
            m = re.match(r"trace '(\w+)'", exc.message)
            if m and m.group(1) in rule.trace_pos:
                pos = rule.trace_pos[m.group(1)]
            elif exc.message.startswith("learning epoch"):
                pos = rule.epoch_pos
            elif exc.message.startswith("learning rule '"):  # a complaint about the rule string
                pos = rule.dw_pos
            raise self.error(exc.message, pos) from None

    def _plasticity(self, call: _Call, args: dict[str, _Value]) -> dict[str, object] | None:
        """``Projection.learning`` from the ``rule`` and ``reward`` arguments of a connectivity call."""
        if "rule" not in args:
            if "reward" in args:
                where = next(a.pos for a in call.arguments if a.name == "reward")
                raise self.error("reward needs a learning rule (rule = NAME)", where)
            return None
        rule = self._lookup_rule(args["rule"])
        learning = copy.deepcopy(rule.learning)
        if "reward" in args:
            value = args["reward"]
            if not isinstance(value, _Word):
                raise self.error(f"reward must be the name of a population, got {_describe(value)}", value.pos)
            learning["reward"] = self._population_named(value.name, value.pos).name
        self._check_learning(learning, rule, call.pos)
        return learning

    def _lookup_rule(self, value: _Value) -> _Rule:
        if not isinstance(value, _Word):
            raise self.error(f"rule must be the name of a learning rule, got {_describe(value)}", value.pos)
        if value.name in self.rules:
            return self.rules[value.name]
        later = self.declared.get(("rule", value.name))
        if later is not None:
            raise self.error(f"learning rule '{value.name}' is used before its definition at line {later.line}",
                             value.pos)
        raise self.error(f"unknown learning rule '{value.name}'{_did_you_mean(value.name, self.rules)}", value.pos)

    # -- schedules --------------------------------------------------------------------------------
    def _schedule_for(self, stmt: Tree) -> dict[str, object]:
        keyword = stmt.data.removesuffix("_stmt")
        if self.schedule is None:
            raise self.error(f"'{keyword}' needs the length of the cycle: add 'schedule cycle = N'",
                             _tree_pos(stmt))
        return self.schedule

    def _cycle_tick(self, expr: Tree, what: str) -> int:
        """A phase or tick of the cycle: an integer in 0..cycle-1."""
        value = self._evaluate(expr)
        tick = self._as_int(value, what)
        cycle = self.schedule["cycle"]
        if not 0 <= tick < cycle:
            raise self.error(f"{what} must be in 0..{cycle - 1} (schedule cycle = {cycle}), got {tick}", value.pos)
        return tick

    def _gated_population(self, tok: Token, verb: str) -> Population:
        pop = self._lookup_population(tok)
        if pop.is_input:
            raise self.error(f"cannot {verb} input port '{pop.name}' (its spikes come from data; "
                             f"schedule them with 'inject')", _token_pos(tok))
        return pop

    def _gate(self, stmt: Tree) -> None:
        """``gate POP in PHASE at THRESHOLD``."""
        pop_tok, phase_expr, threshold_expr = stmt.children
        schedule = self._schedule_for(stmt)
        pop = self._gated_population(pop_tok, "gate")
        phase = self._cycle_tick(phase_expr, "phase")
        threshold = float(self._as_number(self._evaluate(threshold_expr), "gate threshold"))
        self._check_phase_use("gate", pop.name, phase, _token_pos(pop_tok))
        schedule["gates"].append({"population": pop.name, "phase": phase, "threshold": threshold})

    def _veto(self, stmt: Tree) -> None:
        """``veto POP in PHASE``."""
        pop_tok, phase_expr = stmt.children
        schedule = self._schedule_for(stmt)
        pop = self._gated_population(pop_tok, "veto")
        phase = self._cycle_tick(phase_expr, "phase")
        self._check_phase_use("veto", pop.name, phase, _token_pos(pop_tok))
        schedule["vetoes"].append({"population": pop.name, "phase": phase})

    def _check_phase_use(self, kind: str, pop: str, phase: int, pos: _Pos) -> None:
        """A population is gated at most once and vetoed at most once per phase, and not both."""
        done = {"gate": "gated", "veto": "vetoed"}
        first = self.schedule_seen.get((kind, pop, phase))
        if first is not None:
            raise self.error(f"population '{pop}' is {done[kind]} twice in phase {phase} (first at line {first.line})",
                             pos)
        other = "veto" if kind == "gate" else "gate"
        clash = self.schedule_seen.get((other, pop, phase))
        if clash is not None:
            raise self.error(f"population '{pop}' is both gated and vetoed in phase {phase} "
                             f"({other} at line {clash.line})", pos)
        self.schedule_seen[kind, pop, phase] = pos

    def _inject(self, stmt: Tree) -> None:
        """``inject INPUT at TICK``."""
        pop_tok, tick_expr = stmt.children
        schedule = self._schedule_for(stmt)
        pop = self._lookup_population(pop_tok)
        pos = _token_pos(pop_tok)
        if not pop.is_input:
            raise self.error(f"cannot inject into '{pop.name}': it is not an input port", pos)
        tick = self._cycle_tick(tick_expr, "tick")
        first = self.schedule_seen.get(("inject", pop.name))
        if first is not None:
            raise self.error(f"input '{pop.name}' is injected twice (first at line {first.line})", pos)
        self.schedule_seen["inject", pop.name] = pos
        schedule["inputs"][pop.name] = tick

    def _readout(self, stmt: Tree) -> None:
        """``readout POP at TICK``."""
        pop_tok, tick_expr = stmt.children
        schedule = self._schedule_for(stmt)
        pos = _tree_pos(stmt)
        first = self.schedule_seen.get(("readout",))
        if first is not None:
            raise self.error(f"'readout' is given twice (first at line {first.line})", pos)
        pop = self._lookup_population(pop_tok)
        if pop.is_input:
            raise self.error(f"cannot read out input port '{pop.name}'", _token_pos(pop_tok))
        tick = self._cycle_tick(tick_expr, "tick")
        self.schedule_seen[("readout",)] = pos
        schedule["readout"] = {"population": pop.name, "tick": tick}

    # -- the backprop construct -------------------------------------------------------------------
    def _learn(self, stmt: Tree) -> None:
        """``learn backprop(IN -> HIDDEN ... -> OUT, target = T, ...)``."""
        name_tok, chain, arg_list = stmt.children
        pos = _tree_pos(stmt)
        if self.learn_pos is not None:
            raise self.error(f"'learn' is given twice (first at line {self.learn_pos.line})", pos)
        self.learn_pos = pos
        if name_tok.value not in _LEARNING_CONSTRUCTS:
            raise self.error(f"unknown learning construct '{name_tok.value}' (known: {', '.join(_LEARNING_CONSTRUCTS)})"
                             f"{_did_you_mean(name_tok.value, _LEARNING_CONSTRUCTS)}", _token_pos(name_tok))
        call = _Call(name_tok.value, _token_pos(name_tok), self._arguments(arg_list))
        args = self._bind(call, _BACKPROP)
        layers = self._backprop_layers(chain.children)
        target = self._backprop_target(args["target"], layers)
        low = float(self._as_number(args["window"], "window")) if "window" in args else -1.0
        high = float(self._as_number(args["window_high"], "window_high")) if "window_high" in args else 1.0
        if not low < high:
            where = args["window"] if "window" in args else args["window_high"]
            raise self.error(f"window must lie below window_high, got window = {low!r}, window_high = {high!r}",
                             where.pos)
        hidden = None
        if "window_hidden" in args:
            hidden = float(self._as_number(args["window_hidden"], "window_hidden"))
            if not (hidden < 0.5 and hidden < high):
                raise self.error(f"window_hidden must lie below 0.5 and window_high, got {hidden:g}",
                                 args["window_hidden"].pos)
        margin = float(self._as_number(args["margin"], "margin")) if "margin" in args else 0.0
        if not (0.0 <= margin and low <= 0.5 - margin and 0.5 + margin <= high):
            raise self.error(f"margin must be >= 0 and keep 0.5 - margin and 0.5 + margin inside the window "
                             f"({low:g}, {high:g}], got margin = {margin:g}", args["margin"].pos)
        d_th = float(self._as_number(args["error_threshold"], "error_threshold")) if "error_threshold" in args else 0.0
        if not 0 <= d_th < 0.5:
            raise self.error(f"error_threshold must lie in [0, 0.5), got {d_th:g}", args["error_threshold"].pos)
        mode = args.get("mode", _Word("train", pos))
        if not (isinstance(mode, _Word) and mode.name in _BACKPROP_MODES):
            raise self.error(f"mode must be one of {', '.join(_BACKPROP_MODES)}, got {_describe(mode)}", mode.pos)
        name = args.get("name", _Word("bp", pos))
        if not (isinstance(name, _Word) or (isinstance(name, _Text) and name.value)):
            raise self.error(f"name must be a name, got {_describe(name)}", name.pos)
        weights = self._backprop_weights(args.get("weights", _Call(_HE_NORMAL.name, call.pos, ())), layers)
        self.net.attrs["backprop"] = {
            "name": name.name if isinstance(name, _Word) else name.value,
            "layers": [pop.name for pop in layers],
            "target": target.name,
            "window": [low, high],
            "window_hidden": hidden,
            "margin": margin,
            "error_threshold": d_th,
            "mode": mode.name,
            "weights": weights,
        }

    def _backprop_layers(self, tokens: list[Token]) -> list[Population]:
        layers: list[Population] = []
        for i, tok in enumerate(tokens):
            pop, pos = self._lookup_population(tok), _token_pos(tok)
            if pop.name in (layer.name for layer in layers):
                raise self.error(f"layer '{pop.name}' appears twice in the backprop chain", pos)
            if i == 0 and not pop.is_input:
                raise self.error(f"the first layer of backprop must be an input port, '{pop.name}' is not", pos)
            if i > 0 and pop.is_input:
                raise self.error(f"layer '{pop.name}' of backprop is an input port; only the first layer may be one",
                                 pos)
            layers.append(pop)
        if len(layers) < 3:
            chain = " -> ".join(pop.name for pop in layers)
            raise self.error(f"backprop needs at least one hidden layer between input and output, got '{chain}'",
                             _token_pos(tokens[0]))
        return layers

    def _backprop_target(self, value: _Value, layers: list[Population]) -> Population:
        if not isinstance(value, _Word):
            raise self.error(f"target must be the name of an input port, got {_describe(value)}", value.pos)
        target, out = self._population_named(value.name, value.pos), layers[-1]
        if not target.is_input:
            raise self.error(f"target '{target.name}' must be an input port (the labels come from data)", value.pos)
        if target.name in (layer.name for layer in layers):
            raise self.error(f"target '{target.name}' cannot also be a layer", value.pos)
        if target.size != out.size:
            raise self.error(f"target '{target.name}' has {target.size} neurons, but the output layer "
                             f"'{out.name}' has {out.size}", value.pos)
        return target

    def _backprop_weights(self, value: _Value, layers: list[Population]) -> list[np.ndarray]:
        """``he_normal(seed = S)`` or ``npz("file.npz")`` holding W1, W2, ... (Wk: layer k-1 -> layer k);
        ``npz("file.npz", key = "G")`` reads G/W1, G/W2, ... (``average``: a run's averaged weights)."""
        sizes = [pop.size for pop in layers]
        if isinstance(value, _Call) and value.name == _HE_NORMAL.name:
            args = self._bind(value, _HE_NORMAL)
            rng = (np.random.default_rng(self._as_int(args["seed"], "seed", minimum=0)) if "seed" in args
                   else self._derived_rng(_STREAM_BACKPROP, 0))
            return self._he_normal(rng, sizes, value.pos)
        if not (isinstance(value, _Call) and value.name == "npz"):
            raise self.error(f"weights must be he_normal(seed = S) or npz(\"FILE.npz\"), got {_describe(value)}",
                             value.pos)
        args = self._bind(value, _INITIALISERS["npz"])
        # key = "average": a training run's epoch-averaged weights (arrays average/W1, average/W2, ...).
        group = self._as_text(args["key"], "weight group").value.strip("/") + "/" if "key" in args else ""
        file = self._as_text(args["file"], "npz file name")
        weights = []
        for k in range(1, len(layers)):
            key, shape = f"{group}W{k}", (sizes[k - 1], sizes[k])
            arr = self._npz_array(file, key, value.pos)
            if arr.shape != shape:
                raise self.error(f"array '{key}' in '{file.value}' has shape {arr.shape}, expected {shape} "
                                 f"(backprop weights {layers[k - 1].name} -> {layers[k].name})", value.pos)
            arr = arr.astype(np.float64)
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))]
            if bad.size:
                raise self.error(f"array '{key}' in '{file.value}' must hold integer weights (mantissa units), "
                                 f"got {float(bad[0])!r}", value.pos)
            weights.append(arr)
        return weights

    def _he_normal(self, rng: np.random.Generator, sizes: list[int], pos: _Pos) -> list[np.ndarray]:
        """The paper's initialisation, per layer pair in order: N(0, 2 / (n_in + n_out)) * 1024,
        clipped to +-240 and rounded down to an even integer (seeds.md §1.6)."""
        weights = []
        for n_in, n_out in zip(sizes, sizes[1:]):
            self._check_array_size((n_in, n_out), pos)
            w = rng.normal(0.0, math.sqrt(2.0 / (n_in + n_out)), size=(n_in, n_out)) * 1024
            weights.append(np.floor(np.clip(w, -240, 240) / 2) * 2)
        return weights

    # -- statement helpers ------------------------------------------------------------------------
    def _check_new_population(self, tok: Token) -> None:
        if ("population", tok.value) in self.created:
            first = self.created["population", tok.value].line
            raise self.error(f"population '{tok.value}' is defined twice (first at line {first})", _token_pos(tok))

    def _add_population(self, pop: Population, stmt: Tree) -> None:
        self.net.add_population(pop)
        self.created["population", pop.name] = _tree_pos(stmt)

    def _lookup_population(self, tok: Token) -> Population:
        return self._population_named(tok.value, _token_pos(tok))

    def _population_named(self, name: str, pos: _Pos) -> Population:
        if ("population", name) in self.created:
            return self.net.population(name)
        later = self.declared.get(("population", name))
        if later is not None:
            raise self.error(f"population '{name}' is used before its definition at line {later.line}", pos)
        known = [p.name for p in self.net.populations]
        raise self.error(f"unknown population '{name}'{_did_you_mean(name, known)}", pos)

    def _projection_name(self, tok: Token | None, pre: str, post: str) -> str:
        if tok is None:
            return self.net.unique_projection_name(pre, post)
        if ("projection", tok.value) in self.created:
            first = self.created["projection", tok.value].line
            raise self.error(f"projection '{tok.value}' is defined twice (first at line {first})", _token_pos(tok))
        return tok.value

    def _model_ref(self, ref: Tree) -> tuple[NeuronModel, dict[str, int | float | _Call]]:
        """Resolve ``fast`` / ``cuba_lif(threshold = 3)`` to a model and the parameters it sets."""
        child = ref.children[0]
        call = self._call(child) if isinstance(child, Tree) else _Call(child.value, _token_pos(child), ())
        model, params = self._lookup_neuron(call.name, call.pos)
        params = dict(params)
        seen: set[str] = set()
        for arg in call.arguments:
            if arg.name is None:
                raise self.error("neuron parameters must be named, e.g. threshold = 100", arg.pos)
            if arg.name not in model.params:
                known = ", ".join(sorted(model.params)) or "none"
                raise self.error(f"unknown parameter '{arg.name}' for neuron model '{model.name}' (known: {known})",
                                 arg.pos)
            if arg.name in seen:
                raise self.error(f"parameter '{arg.name}' is given twice", arg.pos)
            seen.add(arg.name)
            params[arg.name] = self._param_value(model, arg.name, arg.value)
        return model, params

    def _lookup_neuron(self, name: str, pos: _Pos) -> tuple[NeuronModel, dict[str, int | float | _Call]]:
        if name in self.neurons:
            return self.neurons[name].model, self.neurons[name].params
        if name in _BUILTIN_NEURONS:
            model_name, params = _BUILTIN_NEURONS[name]
            return NEURON_MODELS[model_name], dict(params)
        model = NEURON_MODELS.get(name)
        if model is not None and not model.spiking_source_only:
            return model, {}
        if model is not None:
            raise self.error(f"model '{name}' is for input ports; declare them with 'input NAME[SIZE]'", pos)
        later = self.declared.get(("neuron", name))
        if later is not None:
            raise self.error(f"neuron '{name}' is used before its definition at line {later.line}", pos)
        models = sorted(m.name for m in NEURON_MODELS.values() if not m.spiking_source_only)
        neurons = sorted(set(self.neurons) | set(_BUILTIN_NEURONS))
        known = f"models: {', '.join(models)}; neurons: {', '.join(neurons)}"
        hint = _did_you_mean(name, models + neurons)
        raise self.error(f"unknown neuron model or neuron '{name}' ({known}){hint}", pos)

    def _param_value(self, model: NeuronModel, key: str, value: _Value) -> int | float | _Call:
        """Check a neuron parameter value; per-neuron initialisers stay calls until the size is known."""
        if isinstance(value, _Num):
            return value.value
        if isinstance(value, _Call) and value.name == "constant":
            return self._as_number(self._bind(value, _INITIALISERS["constant"])["value"], "constant value")
        if isinstance(value, _Call) and value.name == "npz" and not model.params[key].per_neuron:
            return self._scalar_from_npz(value, key)
        if isinstance(value, _Call):
            if not model.params[key].per_neuron:
                per = sorted(p.name for p in model.params.values() if p.per_neuron)
                raise self.error(f"parameter '{key}' takes one number for all neurons"
                                 f" (per-neuron values are allowed for: {', '.join(per) or 'none'})", value.pos)
            self._initialiser_signature(value)  # report an unknown initialiser where it is written
            return value
        raise self.error(f"parameter '{key}' must be a number, got {_describe(value)}", value.pos)

    def _scalar_from_npz(self, call: _Call, key: str) -> int | float:
        """A one-element array from an npz file, for a parameter shared by all neurons (e.g. a
        threshold a training script computed)."""
        args = self._bind(call, _INITIALISERS["npz"])
        file = self._as_text(args["file"], "npz file name")
        name = self._as_text(args["key"], "npz key") if "key" in args else _Text(key, call.pos)
        arr = self._npz_array(file, name.value, name.pos)
        if arr.size != 1 or arr.dtype.kind not in "biuf":
            raise self.error(f"parameter '{key}' takes one number for all neurons, but array '{name.value}' in "
                             f"'{file.value}' has shape {arr.shape}", call.pos)
        value = arr.reshape(-1)[0].item()
        return int(value) if float(value).is_integer() else float(value)

    def _synapse_options(self, args: dict[str, _Value]) -> dict[str, object]:
        options: dict[str, object] = {}
        if "delay" in args:
            options["delay"] = self._as_int(args["delay"], "delay", minimum=0)
        if "exponent" in args:
            options["exponent"] = self._as_int(args["exponent"], "exponent")
        if "sign" in args:
            sign = args["sign"]
            if not (isinstance(sign, _Word) and sign.name in SIGNS):
                raise self.error(f"sign must be one of {', '.join(SIGNS)}, got {_describe(sign)}", sign.pos)
            options["sign"] = sign.name
        return options

    def _regular(self, proj: Projection, call: _Call, args: dict[str, _Value], pre: Population, post: Population,
                 index: int) -> None:
        """Fill the weights of a dense, one_to_one or one_to_all projection."""
        if call.name == "one_to_one" and pre.size != post.size:
            raise self.error(f"one_to_one needs populations of equal size, got '{pre.name}' ({pre.size}) "
                             f"-> '{post.name}' ({post.size})", call.pos)
        shape = (pre.size, post.size) if call.name == "dense" else (pre.size,)
        rng = self._derived_rng(_STREAM_PROJECTION, index)
        proj.weights = self._weights(args["weights"], shape, rng, f"{call.name} weights {pre.name} -> {post.name}")

    def _sparse(self, proj: Projection, call: _Call, args: dict[str, _Value], n_pre: int, n_post: int,
                index: int) -> None:
        """Fill a sparse projection from a file or from a random mask of density p."""
        if "file" in args:
            clash = next((k for k in ("p", "weights", "seed") if k in args), None)
            if clash is not None:
                where = next((a.pos for a in call.arguments if a.name == clash), args[clash].pos)
                raise self.error("sparse takes either file = npz(...) or p = ... with weights = ..., not both", where)
            proj.pre_index, proj.post_index, proj.weights = self._sparse_file(args["file"])
            return
        if "p" not in args:
            raise self.error("sparse needs either p = ... (with weights = ...) or file = npz(...)", call.pos)
        if "weights" not in args:
            raise self.error("missing argument 'weights' for sparse", call.pos)
        p = self._as_number(args["p"], "p")
        if not 0 <= p <= 1:
            raise self.error(f"p must be a probability between 0 and 1, got {p!r}", args["p"].pos)
        self._check_array_size((n_pre, n_post), call.pos)
        rng = (np.random.default_rng(self._as_int(args["seed"], "seed", minimum=0)) if "seed" in args
               else self._derived_rng(_STREAM_PROJECTION, index))
        # The mask comes first from the stream; the weights of the kept synapses continue it, so
        # one seed fixes both. np.nonzero walks row-major, so synapses come sorted by (pre, post).
        pre, post = np.nonzero(rng.random((n_pre, n_post)) < p)
        proj.pre_index, proj.post_index = pre.astype(np.int64), post.astype(np.int64)
        proj.weights = self._weights(args["weights"], (pre.size,), rng, f"sparse weights {proj.pre} -> {proj.post}")

    def _sparse_file(self, value: _Value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not (isinstance(value, _Call) and value.name == "npz"):
            raise self.error(f"file must be npz(\"FILE.npz\"), got {_describe(value)}", value.pos)
        args = self._bind(value, _INITIALISERS["npz"])
        if "key" in args:
            raise self.error("a sparse file takes no key: it must hold arrays 'pre', 'post' and 'weights'",
                             args["key"].pos)
        file = self._as_text(args["file"], "npz file name")
        pre, post, weights = (self._npz_array(file, key, value.pos) for key in ("pre", "post", "weights"))
        for key, arr in (("pre", pre), ("post", post), ("weights", weights)):
            if arr.ndim != 1 or arr.shape != pre.shape:
                raise self.error(f"arrays 'pre', 'post' and 'weights' in '{file.value}' must be 1-D of equal length, "
                                 f"got shapes {pre.shape}, {post.shape}, {weights.shape}", value.pos)
            if key != "weights" and arr.dtype.kind not in "iu":
                raise self.error(f"array '{key}' in '{file.value}' must hold integers, got dtype {arr.dtype}",
                                 value.pos)
        order = np.lexsort((post, pre))
        return (pre[order].astype(np.int64), post[order].astype(np.int64),
                weights[order].astype(np.float64))

    # -- initialisers -----------------------------------------------------------------------------
    def _derived_rng(self, stream: int, index: int) -> np.random.Generator:
        """The random stream for an object without an explicit seed: a pure function of the
        network seed, the kind of object and its index, so the same source gives the same arrays."""
        return np.random.default_rng([self.seed, stream, index])

    def _weights(self, value: _Value, shape: tuple[int, ...], rng: np.random.Generator, what: str) -> np.ndarray:
        if isinstance(value, _Num):
            self._check_array_size(shape, value.pos)
            return np.full(shape, float(value.value), dtype=np.float64)
        if isinstance(value, _Call):
            return self._initialise(value, shape, rng, what, default_key="weights")
        raise self.error(f"weights must be a number or an initialiser ({', '.join(sorted(_INITIALISERS))}), "
                         f"got {_describe(value)}", value.pos)

    def _initialiser_signature(self, call: _Call) -> _Signature:
        sig = _INITIALISERS.get(call.name)
        if sig is None:
            raise self.error(f"unknown initialiser '{call.name}' (known: {', '.join(sorted(_INITIALISERS))})"
                             f"{_did_you_mean(call.name, _INITIALISERS)}", call.pos)
        return sig

    def _initialise(self, call: _Call, shape: tuple[int, ...], rng: np.random.Generator, what: str,
                    default_key: str) -> np.ndarray:
        """Materialise an initialiser call as a float64 array of ``shape``."""
        args = self._bind(call, self._initialiser_signature(call))
        if call.name == "npz":
            file = self._as_text(args["file"], "npz file name")
            key = self._as_text(args["key"], "npz key") if "key" in args else _Text(default_key, call.pos)
            arr = self._npz_array(file, key.value, key.pos)
            if arr.shape != shape:
                raise self.error(f"array '{key.value}' in '{file.value}' has shape {arr.shape}, expected {shape} "
                                 f"({what})", call.pos)
            return arr.astype(np.float64)
        self._check_array_size(shape, call.pos)
        if "seed" in args:
            rng = np.random.default_rng(self._as_int(args["seed"], "seed", minimum=0))
        if call.name == "constant":
            return np.full(shape, float(self._as_number(args["value"], "constant value")), dtype=np.float64)
        if call.name == "uniform":
            lo, hi = self._as_number(args["lo"], "lo"), self._as_number(args["hi"], "hi")
            if lo > hi:
                raise self.error(f"uniform needs lo <= hi, got lo = {lo!r}, hi = {hi!r}", call.pos)
            return rng.uniform(lo, hi, size=shape)
        if call.name == "randint":
            lo, hi = self._as_int(args["lo"], "lo"), self._as_int(args["hi"], "hi")
            if lo > hi:
                raise self.error(f"randint needs lo <= hi, got lo = {lo!r}, hi = {hi!r}", call.pos)
            return rng.integers(lo, hi, size=shape, endpoint=True).astype(np.float64)
        mean, std = self._as_number(args["mean"], "mean"), self._as_number(args["std"], "std")
        if std < 0:
            raise self.error(f"normal needs std >= 0, got {std!r}", args["std"].pos)
        return rng.normal(mean, std, size=shape)

    def _npz_array(self, file: _Text, key: str, key_pos: _Pos) -> np.ndarray:
        """Array ``key`` of the npz file named by ``file`` (relative to the source directory)."""
        path = self.base_dir / file.value
        if (path, key) in self.npz_cache:
            return self.npz_cache[path, key]
        try:
            archive = np.load(path, allow_pickle=False)
        except OSError as exc:
            raise self.error(f"cannot read npz file '{path}': {exc.strerror or exc}", file.pos) from None
        except (ValueError, zipfile.BadZipFile):
            raise self.error(f"'{file.value}' is not an .npz archive", file.pos) from None
        if not isinstance(archive, np.lib.npyio.NpzFile):  # a plain .npy file loads as an array
            raise self.error(f"'{file.value}' is not an .npz archive", file.pos)
        with archive:
            if key not in archive.files:
                raise self.error(f"'{file.value}' has no array '{key}' (it has: {', '.join(archive.files) or 'none'})",
                                 key_pos)
            try:
                arr = archive[key]
            except ValueError:
                raise self.error(f"array '{key}' in '{file.value}' holds Python objects; only numeric arrays "
                                 f"can be loaded", key_pos) from None
        if arr.dtype.kind not in "biuf":
            raise self.error(f"array '{key}' in '{file.value}' is not numeric (dtype {arr.dtype})", key_pos)
        self.npz_cache[path, key] = arr
        return arr

    def _check_array_size(self, shape: tuple[int, ...], pos: _Pos) -> None:
        n = math.prod(shape)
        if n > MAX_ARRAY_ELEMENTS:
            raise self.error(f"an array of shape {shape} ({n} elements) is too large "
                             f"(limit {MAX_ARRAY_ELEMENTS})", pos)

    # -- calls and arguments ----------------------------------------------------------------------
    def _call(self, tree: Tree) -> _Call:
        name_tok, arg_list = tree.children
        return _Call(name_tok.value, _token_pos(name_tok), self._arguments(arg_list))

    def _arguments(self, arg_list: Tree | None) -> tuple[_Argument, ...]:
        arguments = []
        for arg in arg_list.children if arg_list is not None else ():
            if isinstance(arg, Tree) and arg.data == "keyword_argument":
                key_tok, expr = arg.children
                arguments.append(_Argument(key_tok.value, self._evaluate(expr), _token_pos(key_tok)))
            else:
                value = self._evaluate(arg)
                arguments.append(_Argument(None, value, value.pos))
        return tuple(arguments)

    def _bind(self, call: _Call, sig: _Signature) -> dict[str, _Value]:
        """Match a call's arguments to ``sig``; returns only the arguments that were given."""
        bound: dict[str, _Value] = {}
        named_seen = False
        for i, arg in enumerate(call.arguments):
            if arg.name is None:
                if named_seen:
                    raise self.error("positional argument after a named argument", arg.pos)
                if i >= sig.positional:
                    if sig.positional == 0:
                        raise self.error(f"{sig.name} takes only named arguments, e.g. {sig.params[0]} = ...", arg.pos)
                    names = ", ".join(sig.params[:sig.positional])
                    raise self.error(f"too many positional arguments for {sig.name} (takes {names}; "
                                     f"name the others)", arg.pos)
                bound[sig.params[i]] = arg.value
                continue
            named_seen = True
            if arg.name not in sig.params:
                raise self.error(f"unknown argument '{arg.name}' for {sig.name} "
                                 f"(known: {', '.join(sorted(sig.params))})", arg.pos)
            if arg.name in bound:
                raise self.error(f"argument '{arg.name}' is given twice", arg.pos)
            bound[arg.name] = arg.value
        for name in sig.params:
            if name in sig.required and name not in bound:
                raise self.error(f"missing argument '{name}' for {sig.name}", call.pos)
        return bound

    # -- expressions ------------------------------------------------------------------------------
    def _evaluate(self, node: Tree) -> _Value:
        """Fold an expression tree into a value; arithmetic is checked and exact for integers."""
        kind = node.data
        if kind in ("int", "float", "string", "word"):
            tok = node.children[0]
            pos = _token_pos(tok)
            if kind == "int":
                return _Num(int(tok.value), pos)
            if kind == "float":
                return self._finite(float(tok.value), pos)
            if kind == "string":
                return _Text(tok.value[1:-1], pos)
            return _Word(tok.value, pos)
        if kind == "call":
            return self._call(node)
        if kind in ("neg", "pos"):
            operand = self._operand(self._evaluate(node.children[0]), "-" if kind == "neg" else "+")
            return _Num(-operand if kind == "neg" else operand, _tree_pos(node))
        left_value, right_value = (self._evaluate(c) for c in node.children)
        symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[kind]
        left, right = self._operand(left_value, symbol), self._operand(right_value, symbol)
        pos = left_value.pos
        if kind == "add":
            result = left + right
        elif kind == "sub":
            result = left - right
        elif kind == "mul":
            result = left * right
        else:
            if right == 0:
                raise self.error("division by zero", right_value.pos)
            result = left / right  # true division: always a float, like Python
        return self._finite(result, pos) if isinstance(result, float) else _Num(result, pos)

    def _operand(self, value: _Value, symbol: str) -> int | float:
        if not isinstance(value, _Num):
            raise self.error(f"'{symbol}' needs numbers, got {_describe(value)}", value.pos)
        return value.value

    def _finite(self, x: float, pos: _Pos) -> _Num:
        if not math.isfinite(x):
            raise self.error("number out of range", pos)
        return _Num(x, pos)

    # -- value coercions --------------------------------------------------------------------------
    def _as_number(self, value: _Value, what: str) -> int | float:
        if not isinstance(value, _Num):
            raise self.error(f"{what} must be a number, got {_describe(value)}", value.pos)
        try:
            float(value.value)  # a huge integer would overflow later, in numpy, with a traceback
        except OverflowError:
            raise self.error(f"{what} is out of range", value.pos) from None
        return value.value

    def _as_int(self, value: _Value, what: str, minimum: int | None = None) -> int:
        kind = {0: "a non-negative", 1: "a positive"}.get(minimum, "an")  # type: ignore[arg-type]
        if not (isinstance(value, _Num) and isinstance(value.value, int)) \
                or (minimum is not None and value.value < minimum):
            raise self.error(f"{what} must be {kind} integer, got {_describe(value)}", value.pos)
        return value.value

    def _as_text(self, value: _Value, what: str) -> _Text:
        if not isinstance(value, _Text):
            raise self.error(f"{what} must be a string in double quotes, got {_describe(value)}", value.pos)
        return value

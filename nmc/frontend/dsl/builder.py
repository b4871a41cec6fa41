"""The builder: walks the statements in source order and assembles the :class:`Network`.

File-wide settings (``network``, ``seed``, ``schedule cycle``) are read first, wherever they
appear. Then each statement resolves its names, checks its arguments, materialises its arrays and
adds populations, projections and probes. Finally the IR verifier runs as a safety net; its first
complaint is reported at the statement that created the object.

This module holds the network's own statements (``neuron``, ``input``, ``population``, ``output``,
``connect``, ``probe``); the other concerns are mixins the :class:`Builder` is made of:
:mod:`.initialisers` (arrays), :mod:`.scope` (names), :mod:`.learning` (rules and schedules) and
:mod:`.backprop` (the ``learn`` statement).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from lark import Token, Tree

from ...errors import DslError, ResourceError
from ...ir.models import NEURON_MODELS, PROBE_VARIABLES, NeuronModel
from ...ir.network import SIGNS, Network, Population, Probe, Projection
from ...ir.verify import verify_problems
from .backprop import BackpropStatement
from .initialisers import INITIALISERS, STREAM_POPULATION, STREAM_PROJECTION, Initialisers
from .learning import LearningStatements
from .values import Call, Num, Pos, Signature, Value, Word, describe, did_you_mean, token_pos, tree_pos

#: Named neurons every file knows, as (model, parameters); used like a ``neuron`` definition.
#: (Empty today: ``graded``, once one, is now a neuron model of the IR that each target maps.)
BUILTIN_NEURONS: dict[str, tuple[str, dict[str, int | float]]] = {}

_SYNAPSE_ARGS = ("delay", "sign", "exponent", "rule", "reward")
CONNECTIVITY: dict[str, Signature] = {
    "dense": Signature("dense", ("weights",) + _SYNAPSE_ARGS, frozenset({"weights"}), 1),
    "one_to_one": Signature("one_to_one", ("weights",) + _SYNAPSE_ARGS, frozenset({"weights"}), 1),
    "one_to_all": Signature("one_to_all", ("weights",) + _SYNAPSE_ARGS, frozenset({"weights"}), 1),
    # Either p (+ weights, seed) or file; the builder checks which combination was given.
    "sparse": Signature("sparse", ("p", "weights", "seed", "file") + _SYNAPSE_ARGS, frozenset(), 2),
}


@dataclass
class NeuronSet:
    """A ``neuron NAME = model(...)`` definition: a model and parameter values."""

    model: NeuronModel
    params: dict[str, int | float | Call]  # a Call is a per-neuron initialiser, drawn per population
    pos: Pos


def _has_named_argument(call: Tree, name: str) -> bool:
    """Whether a call's syntax tree passes an argument ``name = ...`` (without evaluating it)."""
    arg_list = call.children[1]
    return arg_list is not None and any(
        isinstance(arg, Tree) and arg.data == "keyword_argument" and arg.children[0].value == name
        for arg in arg_list.children)


@dataclass(kw_only=True)
class Builder(LearningStatements, BackpropStatement, Initialisers):
    """Builds one file's network: ``Builder(filename=..., base_dir=..., default_name=...).build(tree)``."""

    default_name: str  # the network's name unless a ``network`` statement gives one
    size_limit: Any = None  # a target's SizeLimit (nmc.lowering.common): sizes are checked as they are read
    neurons: dict[str, NeuronSet] = field(default_factory=dict)
    outputs: dict[str, Pos] = field(default_factory=dict)

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
            "score_stmt": self._score,
        }
        for stmt in statements:
            handler = handlers.get(stmt.data)
            if handler is not None:
                handler(stmt)
        self._check_trial()
        self._verify()
        return self.net

    def _global_settings(self, statements: list[Tree]) -> None:
        """``network``, ``seed``, ``dt`` and the ``schedule`` settings (``cycle``, ``trial``, ``batch``)
        apply to the whole file wherever they appear, at most once each."""
        name, seen = self.default_name, {}
        cycle = None
        keywords = {"network_stmt": "network", "seed_stmt": "seed", "dt_stmt": "dt"}
        dt = None
        for stmt in statements:
            keyword = keywords.get(stmt.data)
            if stmt.data == "schedule_stmt":
                keyword = self._schedule_setting(stmt)
            if keyword is None:
                continue
            pos = tree_pos(stmt)
            if keyword in seen:
                raise self.error(f"'{keyword}' is given twice (first at line {seen[keyword].line})", pos)
            seen[keyword] = pos
            if keyword == "network":
                tok = stmt.children[0]
                name = tok.value[1:-1] if tok.type == "STRING" else tok.value
            elif keyword == "seed":
                self.seed = self._as_int(self._evaluate(stmt.children[0]), "seed", minimum=0)
            elif keyword == "dt":
                value = self._evaluate(stmt.children[0])
                dt = float(self._as_quantity(value, "dt", "time"))
                if not dt > 0:
                    raise self.error(f"dt must be a positive time, got {describe(value)}", value.pos)
            elif keyword == "schedule cycle":
                cycle = self._as_int(self._evaluate(stmt.children[1]), "cycle", minimum=1)
            else:  # schedule trial / schedule batch (e-prop)
                self._trial_setting(keyword, stmt)
        self.net = Network(name, {"seed": self.seed} if dt is None else {"dt": dt, "seed": self.seed})
        if cycle is not None:
            self.schedule = {"cycle": cycle, "gates": [], "vetoes": [], "inputs": {}}
            self.net.attrs["schedule"] = self.schedule
        if self.trial is not None:
            if cycle is not None:
                raise self.error("a file has either a synfire cycle ('schedule cycle') or e-prop trials "
                                 "('schedule trial'), not both", seen["schedule cycle"])
            self.net.attrs["trial"] = self.trial

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

    # -- neurons and populations ------------------------------------------------------------------
    def _neuron(self, stmt: Tree) -> None:
        name_tok, ref = stmt.children
        name, pos = name_tok.value, token_pos(name_tok)
        if name in NEURON_MODELS:
            raise self.error(f"neuron '{name}' would hide the built-in neuron model of that name", pos)
        if name in BUILTIN_NEURONS:
            raise self.error(f"neuron '{name}' is built in", pos)
        if name in self.neurons:
            raise self.error(f"neuron '{name}' is defined twice (first at line {self.neurons[name].pos.line})", pos)
        model, params = self._model_ref(ref)
        self.neurons[name] = NeuronSet(model, params, pos)

    def _input(self, stmt: Tree) -> None:
        name_tok, size_expr = stmt.children
        self._check_new_population(name_tok)
        size = self._as_int(self._evaluate(size_expr), "population size", minimum=1)
        self._admit(name_tok.value, size, True, size_expr)
        self._add_population(Population(name_tok.value, size, "input", {}, role="input"), stmt)

    def _population(self, stmt: Tree) -> None:
        name_tok, size_expr, ref = stmt.children
        self._check_new_population(name_tok)
        size = self._as_int(self._evaluate(size_expr), "population size", minimum=1)
        self._admit(name_tok.value, size, False, size_expr)
        model, given = self._model_ref(ref)
        params: dict[str, object] = dict(model.defaults())
        rng = self._derived_rng(STREAM_POPULATION, self.net.n_populations)
        for key, value in given.items():
            if isinstance(value, Call):  # a per-neuron initialiser, e.g. bias = uniform(0, 10)
                value = self._initialise(value, (size,), rng, f"{key} of population '{name_tok.value}'", key,
                                         model.params[key].dimension)
            params[key] = value
        self._add_population(Population(name_tok.value, size, model.name, params), stmt)

    def _admit(self, name: str, size: int, is_input: bool, size_expr: Tree | Token) -> None:
        """Hold a size to the target's machine before anything of that size is made."""
        if self.size_limit is None:
            return
        try:
            self.size_limit.admit(name, size, is_input)
        except ResourceError as exc:
            pos = token_pos(size_expr) if isinstance(size_expr, Token) else tree_pos(size_expr)
            raise self.error(f"population '{name}': {exc.message}", pos) from None

    def _output(self, stmt: Tree) -> None:
        for tok in stmt.children:
            pop = self._lookup_population(tok)
            pos = token_pos(tok)
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
                             f"allows {', '.join(allowed)}", token_pos(var_tok))
        name = f"{pop.name}.{var_tok.value}"
        if ("probe", name) in self.created:
            raise self.error(f"probe '{name}' is defined twice (first at line {self.created['probe', name].line})",
                             tree_pos(stmt))
        self.net.add_probe(Probe(name, pop.name, var_tok.value))
        self.created["probe", name] = tree_pos(stmt)

    def _model_ref(self, ref: Tree) -> tuple[NeuronModel, dict[str, int | float | Call]]:
        """Resolve ``fast`` / ``cuba_lif(threshold = 3)`` to a model and the parameters it sets."""
        child = ref.children[0]
        call = self._call(child) if isinstance(child, Tree) else Call(child.value, token_pos(child), ())
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

    def _lookup_neuron(self, name: str, pos: Pos) -> tuple[NeuronModel, dict[str, int | float | Call]]:
        if name in self.neurons:
            return self.neurons[name].model, self.neurons[name].params
        if name in BUILTIN_NEURONS:
            model_name, params = BUILTIN_NEURONS[name]
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
        neurons = sorted(set(self.neurons) | set(BUILTIN_NEURONS))
        known = f"models: {', '.join(models)}" + (f"; neurons: {', '.join(neurons)}" if neurons else "")
        hint = did_you_mean(name, models + neurons)
        raise self.error(f"unknown neuron model or neuron '{name}' ({known}){hint}", pos)

    def _param_value(self, model: NeuronModel, key: str, value: Value) -> int | float | Call:
        """Check a neuron parameter value (a quantity of the parameter's dimension, or a plain
        number in the IR's unit of it); per-neuron initialisers stay calls until the size is known."""
        dim = model.params[key].dimension
        if isinstance(value, Num):
            return self._as_quantity(value, f"parameter '{key}'", dim)
        if isinstance(value, Call) and value.name == "constant":
            return self._as_quantity(self._bind(value, INITIALISERS["constant"])["value"], "constant value", dim)
        if isinstance(value, Call) and value.name == "npz" and (not model.params[key].per_neuron
                                                                  or self._npz_holds_one(value, key)):
            return self._scalar_from_npz(value, key)
        if isinstance(value, Call):
            if not model.params[key].per_neuron:
                per = sorted(p.name for p in model.params.values() if p.per_neuron)
                raise self.error(f"parameter '{key}' takes one number for all neurons"
                                 f" (per-neuron values are allowed for: {', '.join(per) or 'none'})", value.pos)
            self._initialiser_signature(value)  # report an unknown initialiser where it is written
            return value
        raise self.error(f"parameter '{key}' must be a number, got {describe(value)}", value.pos)

    # -- projections ------------------------------------------------------------------------------
    def _connect(self, stmt: Tree) -> None:
        pre_tok, post_tok, name_tok, call_tree = stmt.children
        pre, post = self._lookup_population(pre_tok), self._lookup_population(post_tok)
        if post.is_input:
            if _has_named_argument(call_tree, "rule"):
                name = name_tok.value if name_tok is not None else self.net.unique_projection_name(pre.name, post.name)
                raise self.error(f"plastic projection '{name}' cannot target input port '{post.name}'",
                                 token_pos(post_tok))
            raise self.error(f"cannot connect into input population '{post.name}' (inputs are fed from data)",
                             token_pos(post_tok))
        name = self._projection_name(name_tok, pre.name, post.name)
        call = self._call(call_tree)
        sig = CONNECTIVITY.get(call.name)
        if sig is None:
            raise self.error(f"unknown connectivity '{call.name}' (known: {', '.join(sorted(CONNECTIVITY))})"
                             f"{did_you_mean(call.name, CONNECTIVITY)}", call.pos)
        args = self._bind(call, sig)
        proj = Projection(name=name, pre=pre.name, post=post.name, connectivity=call.name,
                          weights=np.zeros(0), learning=self._plasticity(call, args),
                          **self._synapse_options(args))
        index = self.net.n_projections  # fixes the projection's random stream
        if call.name == "sparse":
            self._sparse(proj, call, args, pre.size, post.size, index)
        else:
            self._regular(proj, call, args, pre, post, index)
        self.net.add_projection(proj)
        self.created["projection", name] = tree_pos(stmt)

    def _synapse_options(self, args: dict[str, Value]) -> dict[str, object]:
        options: dict[str, object] = {}
        if "delay" in args:
            options["delay"] = self._as_int(args["delay"], "delay", minimum=0)
        if "exponent" in args:
            options["exponent"] = self._as_int(args["exponent"], "exponent")
        if "sign" in args:
            sign = args["sign"]
            if not (isinstance(sign, Word) and sign.name in SIGNS):
                raise self.error(f"sign must be one of {', '.join(SIGNS)}, got {describe(sign)}", sign.pos)
            options["sign"] = sign.name
        return options

    def _regular(self, proj: Projection, call: Call, args: dict[str, Value], pre: Population, post: Population,
                 index: int) -> None:
        """Fill the weights of a dense, one_to_one or one_to_all projection."""
        if call.name == "one_to_one" and pre.size != post.size:
            raise self.error(f"one_to_one needs populations of equal size, got '{pre.name}' ({pre.size}) "
                             f"-> '{post.name}' ({post.size})", call.pos)
        shape = (pre.size, post.size) if call.name == "dense" else (pre.size,)
        rng = self._derived_rng(STREAM_PROJECTION, index)
        proj.weights = self._weights(args["weights"], shape, rng, f"{call.name} weights {pre.name} -> {post.name}",
                                     NEURON_MODELS[post.model].weight_dimension)

    def _sparse(self, proj: Projection, call: Call, args: dict[str, Value], n_pre: int, n_post: int,
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
               else self._derived_rng(STREAM_PROJECTION, index))
        # The mask comes first from the stream; the weights of the kept synapses continue it, so
        # one seed fixes both. np.nonzero walks row-major, so synapses come sorted by (pre, post).
        pre, post = np.nonzero(rng.random((n_pre, n_post)) < p)
        proj.pre_index, proj.post_index = pre.astype(np.int64), post.astype(np.int64)
        proj.weights = self._weights(args["weights"], (pre.size,), rng, f"sparse weights {proj.pre} -> {proj.post}",
                                     NEURON_MODELS[self.net.population(proj.post).model].weight_dimension)

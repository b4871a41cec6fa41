"""Learning rules and learning schedules.

* ``rule NAME = learning(dw = "...", epoch = E, x1 = trace(impulse = I, tau = T), ...)`` defines a
  rule; ``connect ... : dense(..., rule = NAME, reward = POP)`` makes a projection plastic with it.
  The IR's own check of a rule (:func:`nmc.ir.learning.learning_spec`) runs here, and its complaint
  is reported where the faulty part of the rule is written.
* ``gate``, ``veto``, ``inject`` and ``readout`` fill the phase schedule of a ``schedule cycle = N``
  (the cycle itself is a file-wide setting, read by the builder before any statement runs).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from lark import Token, Tree

from ...errors import IrError
from ...ir.learning import TRACES, learning_spec, parse_rule
from ...ir.network import Population
from .scope import Scope
from .values import Call, Pos, Signature, Value, Word, describe, did_you_mean, token_pos, tree_pos

LEARNING = Signature("learning", ("dw", "epoch") + TRACES, frozenset({"dw"}), 1)
TRACE = Signature("trace", ("impulse", "tau"), frozenset({"impulse", "tau"}), 2)


@dataclass
class Rule:
    """A ``rule NAME = learning(...)`` definition and where its parts are written."""

    learning: dict[str, object]  # {"rule", "epoch", "traces"}: Projection.learning without "reward"
    pos: Pos  # of the name
    dw_pos: Pos
    epoch_pos: Pos
    trace_pos: dict[str, Pos]


@dataclass(kw_only=True)
class LearningStatements(Scope):
    """The rule and schedule statements; part of the builder."""

    rules: dict[str, Rule] = field(default_factory=dict)
    #: ``net.attrs["schedule"]`` once a ``schedule cycle`` statement is seen (None: no schedule).
    schedule: dict[str, object] | None = None
    #: Where each (statement kind, key) of the schedule was given, to report repeats.
    schedule_seen: dict[tuple, Pos] = field(default_factory=dict)

    # -- learning rules ---------------------------------------------------------------------------
    def _rule(self, stmt: Tree) -> None:
        """``rule NAME = learning(dw = "...", epoch = E, x1 = trace(impulse = I, tau = T), ...)``."""
        name_tok, call_tree = stmt.children
        name, pos = name_tok.value, token_pos(name_tok)
        if name in self.rules:
            first = self.rules[name].pos.line
            raise self.error(f"learning rule '{name}' is defined twice (first at line {first})", pos)
        call = self._call(call_tree)
        if call.name != LEARNING.name:
            raise self.error(f"unknown kind of rule '{call.name}' (known: learning)"
                             f"{did_you_mean(call.name, [LEARNING.name])}", call.pos)
        args = self._bind(call, LEARNING)
        dw = self._as_text(args["dw"], "dw")
        epoch = self._as_int(args["epoch"], "epoch") if "epoch" in args else 1
        traces, trace_pos = {}, {}
        for key, value in args.items():
            if key in TRACES:
                traces[key] = self._trace(value, key)
                trace_pos[key] = value.pos
        rule = Rule({"rule": dw.value, "epoch": epoch, "traces": traces}, pos, dw.pos,
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

    def _trace(self, value: Value, key: str) -> list[int | float]:
        """``trace(impulse = I, tau = T)`` as [I, T] (ints where integral, as the IR stores them)."""
        if not (isinstance(value, Call) and value.name == TRACE.name):
            raise self.error(f"{key} must be trace(impulse = ..., tau = ...), got {describe(value)}", value.pos)
        args = self._bind(value, TRACE)
        numbers = [self._as_number(args[k], k) for k in ("impulse", "tau")]
        return [int(x) if float(x).is_integer() else float(x) for x in numbers]

    def _check_learning(self, learning: dict[str, object], rule: Rule, pos: Pos) -> None:
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

    def _plasticity(self, call: Call, args: dict[str, Value]) -> dict[str, object] | None:
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
            if not isinstance(value, Word):
                raise self.error(f"reward must be the name of a population, got {describe(value)}", value.pos)
            learning["reward"] = self._population_named(value.name, value.pos).name
        self._check_learning(learning, rule, call.pos)
        return learning

    def _lookup_rule(self, value: Value) -> Rule:
        if not isinstance(value, Word):
            raise self.error(f"rule must be the name of a learning rule, got {describe(value)}", value.pos)
        if value.name in self.rules:
            return self.rules[value.name]
        later = self.declared.get(("rule", value.name))
        if later is not None:
            raise self.error(f"learning rule '{value.name}' is used before its definition at line {later.line}",
                             value.pos)
        raise self.error(f"unknown learning rule '{value.name}'{did_you_mean(value.name, self.rules)}", value.pos)

    # -- schedules --------------------------------------------------------------------------------
    def _schedule_for(self, stmt: Tree) -> dict[str, object]:
        keyword = stmt.data.removesuffix("_stmt")
        if self.schedule is None:
            raise self.error(f"'{keyword}' needs the length of the cycle: add 'schedule cycle = N'",
                             tree_pos(stmt))
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
                             f"schedule them with 'inject')", token_pos(tok))
        return pop

    def _gate(self, stmt: Tree) -> None:
        """``gate POP in PHASE at THRESHOLD``."""
        pop_tok, phase_expr, threshold_expr = stmt.children
        schedule = self._schedule_for(stmt)
        pop = self._gated_population(pop_tok, "gate")
        phase = self._cycle_tick(phase_expr, "phase")
        threshold = float(self._as_number(self._evaluate(threshold_expr), "gate threshold"))
        self._check_phase_use("gate", pop.name, phase, token_pos(pop_tok))
        schedule["gates"].append({"population": pop.name, "phase": phase, "threshold": threshold})

    def _veto(self, stmt: Tree) -> None:
        """``veto POP in PHASE``."""
        pop_tok, phase_expr = stmt.children
        schedule = self._schedule_for(stmt)
        pop = self._gated_population(pop_tok, "veto")
        phase = self._cycle_tick(phase_expr, "phase")
        self._check_phase_use("veto", pop.name, phase, token_pos(pop_tok))
        schedule["vetoes"].append({"population": pop.name, "phase": phase})

    def _check_phase_use(self, kind: str, pop: str, phase: int, pos: Pos) -> None:
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
        pos = token_pos(pop_tok)
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
        pos = tree_pos(stmt)
        first = self.schedule_seen.get(("readout",))
        if first is not None:
            raise self.error(f"'readout' is given twice (first at line {first.line})", pos)
        pop = self._lookup_population(pop_tok)
        if pop.is_input:
            raise self.error(f"cannot read out input port '{pop.name}'", token_pos(pop_tok))
        tick = self._cycle_tick(tick_expr, "tick")
        self.schedule_seen[("readout",)] = pos
        schedule["readout"] = {"population": pop.name, "tick": tick}

"""Learning rules and learning schedules.

* ``rule NAME = learning(dw = "...", epoch = E, x1 = trace(impulse = I, tau = T), ...)`` defines a
  rule; ``connect ... : dense(..., rule = NAME, reward = POP)`` makes a projection plastic with it.
  The IR's own check of a rule (:func:`nmc.ir.learning.learning_spec`) runs here, and its complaint
  is reported where the faulty part of the rule is written.
* ``gate``, ``veto``, ``inject`` and ``readout`` fill the phase schedule of a ``schedule cycle = N``
  (the cycle itself is a file-wide setting, read by the builder before any statement runs).
* ``rule NAME = eprop(eta = ..., feedback = random(seed = S), rate_target = 10 Hz, rate_reg = ...)``
  defines an e-prop rule (:mod:`nmc.ir.eprop`); ``schedule trial = DURATION``, ``schedule batch = N``
  and ``score POP against TARGET from TIME`` give its trial structure (docs/dsl.md, "e-prop").
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from lark import Token, Tree

from ...errors import IrError
from ...ir.eprop import LOSSES, UPDATES, eprop_rule, whole_steps
from ...ir.learning import TRACES, learning_spec, parse_rule
from ...ir.network import Population
from .scope import Scope
from .values import Call, Pos, Signature, Value, Word, describe, did_you_mean, token_pos, tree_pos

LEARNING = Signature("learning", ("dw", "epoch") + TRACES, frozenset({"dw"}), 1)
TRACE = Signature("trace", ("impulse", "tau"), frozenset({"impulse", "tau"}), 2)
EPROP = Signature("eprop", ("eta", "feedback", "rate_target", "rate_reg", "loss", "gamma", "update", "w_max"),
                  frozenset({"eta", "feedback"}), 0)
RANDOM = Signature("random", ("seed",), frozenset({"seed"}), 1)
RULE_KINDS = (LEARNING.name, EPROP.name)


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
    #: ``net.attrs["trial"]`` once a ``schedule trial`` statement is seen (e-prop; None: no trials).
    trial: dict[str, object] | None = None
    trial_seen: dict[str, Pos] = field(default_factory=dict)

    # -- learning rules ---------------------------------------------------------------------------
    def _rule(self, stmt: Tree) -> None:
        """``rule NAME = learning(dw = "...", epoch = E, x1 = trace(impulse = I, tau = T), ...)``."""
        name_tok, call_tree = stmt.children
        name, pos = name_tok.value, token_pos(name_tok)
        if name in self.rules:
            first = self.rules[name].pos.line
            raise self.error(f"learning rule '{name}' is defined twice (first at line {first})", pos)
        call = self._call(call_tree)
        if call.name == EPROP.name:
            self.rules[name] = self._eprop_rule(call, pos)
            return
        if call.name != LEARNING.name:
            raise self.error(f"unknown kind of rule '{call.name}' (known: {', '.join(RULE_KINDS)})"
                             f"{did_you_mean(call.name, RULE_KINDS)}", call.pos)
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

    def _eprop_rule(self, call: Call, pos: Pos) -> Rule:
        """``eprop(eta = E, feedback = random(seed = S), rate_target = F, rate_reg = C, loss = L, gamma = G,
        update = U, w_max = W)``."""
        args = self._bind(call, EPROP)
        learning: dict[str, object] = {"kind": "eprop", "eta": float(self._as_number(args["eta"], "eta"))}
        fb = args["feedback"]
        if not (isinstance(fb, Call) and fb.name == RANDOM.name):
            raise self.error(f"feedback must be random(seed = S) (fixed random feedback weights), got {describe(fb)}",
                             fb.pos)
        learning["feedback_seed"] = self._as_int(self._bind(fb, RANDOM)["seed"], "seed", minimum=0)
        if "rate_target" in args:
            learning["rate_target"] = float(self._as_quantity(args["rate_target"], "rate_target", "frequency"))
        if "rate_reg" in args:
            learning["rate_reg"] = float(self._as_number(args["rate_reg"], "rate_reg"))
        if "gamma" in args:
            learning["gamma"] = float(self._as_number(args["gamma"], "gamma"))
        if "loss" in args:
            loss = args["loss"]
            if not (isinstance(loss, Word) and loss.name in LOSSES):
                raise self.error(f"loss must be one of {', '.join(LOSSES)}, got {describe(loss)}", loss.pos)
            learning["loss"] = loss.name
        if "w_max" in args:
            learning["w_max"] = float(self._as_quantity(args["w_max"], "w_max", "current"))
        if "update" in args:
            update = args["update"]
            if not (isinstance(update, Word) and update.name in UPDATES):
                raise self.error(f"update must be one of {', '.join(UPDATES)}, got {describe(update)}", update.pos)
            learning["update"] = update.name
        try:
            eprop_rule(learning, "rule")
        except IrError as exc:  # e.g. "e-prop eta must be > 0": report it at the argument named
            key = exc.message.split()[1] if exc.message.startswith("e-prop ") else ""
            where = next((a.pos for a in call.arguments if a.name == key), call.pos)
            raise self.error(exc.message, where) from None
        return Rule(learning, pos, call.pos, call.pos, {})

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
        if learning.get("kind") == "eprop":
            if "reward" in args:
                where = next(a.pos for a in call.arguments if a.name == "reward")
                raise self.error("reward is for sum-of-products rules; an e-prop rule learns from the "
                                 "'score' statement's learning signal", where)
            if "delay" in args:
                delay = self._as_int(args["delay"], "delay", minimum=0)
                if delay != 0:
                    raise self.error(f"an e-prop projection has delay 0 (a spike reaches the next step, as the "
                                     f"e-prop equations assume), got {delay}", args["delay"].pos)
            return learning
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

    # -- e-prop trials ----------------------------------------------------------------------------
    def _schedule_setting(self, stmt: Tree) -> str:
        """Which file-wide setting a ``schedule NAME = ...`` statement is."""
        tok = stmt.children[0]
        known = ("cycle", "trial", "batch")
        if tok.value not in known:
            raise self.error(f"unknown schedule setting '{tok.value}' (known: {', '.join(known)})"
                             f"{did_you_mean(tok.value, known)}", token_pos(tok))
        return f"schedule {tok.value}"

    def _trial_setting(self, keyword: str, stmt: Tree) -> None:
        """``schedule trial = DURATION`` (a time) or ``schedule batch = N`` (trials per weight update)."""
        value = self._evaluate(stmt.children[1])
        if self.trial is None:
            self.trial = {"duration": None, "batch": 1}
        if keyword == "schedule trial":
            duration = float(self._as_quantity(value, "trial", "time"))
            if not duration > 0:
                raise self.error(f"trial must be a positive time, got {describe(value)}", value.pos)
            self.trial["duration"] = duration
        else:
            self.trial["batch"] = self._as_int(value, "batch", minimum=1)
        self.trial_seen[keyword] = tree_pos(stmt)

    def _score(self, stmt: Tree) -> None:
        """``score POP against TARGET from TIME``: the readout scored over [TIME, end of trial)."""
        pop_tok, target_tok, start_expr = stmt.children
        pos = tree_pos(stmt)
        if self.trial is None or self.trial.get("duration") is None:
            raise self.error("'score' needs the length of a trial: add 'schedule trial = DURATION'", pos)
        if "score" in self.trial:
            raise self.error(f"'score' is given twice (first at line {self.trial_seen['score'].line})", pos)
        pop = self._lookup_population(pop_tok)
        if pop.model != "li":
            raise self.error(f"the scored population '{pop.name}' must be a leaky readout (model 'li'), "
                             f"not '{pop.model}'", token_pos(pop_tok))
        target = self._lookup_population(target_tok)
        if not target.is_input:
            raise self.error(f"the target '{target.name}' must be an input port (its data are the desired readout)",
                             token_pos(target_tok))
        if target.size != pop.size:
            raise self.error(f"target '{target.name}' has {target.size} units, but the scored population "
                             f"'{pop.name}' has {pop.size}", token_pos(target_tok))
        value = self._evaluate(start_expr)
        start = float(self._as_quantity(value, "score window start", "time"))
        duration = float(self.trial["duration"])  # type: ignore[arg-type]
        if not 0 <= start < duration:
            raise self.error(f"the scored window must start inside the trial [0, {duration:g}) ms, "
                             f"got {describe(value)}", value.pos)
        self.trial["score"] = {"population": pop.name, "target": target.name, "from": start}
        self.trial_seen["score"] = pos

    def _check_trial(self) -> None:
        """e-prop rules need trials and a score; trials need an e-prop rule."""
        uses = [(p.name, p.learning) for p in self.net.projections if isinstance(p.learning, dict)
                and p.learning.get("kind") == "eprop"]
        if self.trial is not None and self.trial.get("duration") is None:
            raise self.error("'schedule batch' needs 'schedule trial = DURATION'", self.trial_seen["schedule batch"])
        if not uses:
            if self.trial is not None:
                first = min(self.trial_seen.values(), key=lambda p: (p.line, p.col))
                raise self.error("trials ('schedule trial', 'score') are for e-prop rules, and no projection "
                                 "uses one", first)
            return
        where = self.created["projection", uses[0][0]]
        if self.trial is None:
            raise self.error("an e-prop rule needs trials: add 'schedule trial = DURATION' and "
                             "'score POP against TARGET from TIME'", where)
        if "score" not in self.trial:
            raise self.error("an e-prop rule needs a readout to score: add 'score POP against TARGET from TIME'",
                             where)
        from ...ir.verify import eprop_rule_clash
        clash = eprop_rule_clash(self.net)
        if clash is not None:
            raise self.error(clash[1], self.created["projection", clash[0]])
        # The chip counts trials and the window in ticks: both must be whole time steps.
        dt = self.net.attrs.get("dt")
        if dt is not None:
            score = self.trial["score"]
            for what, value, pos in (("the trial", self.trial["duration"], self.trial_seen["schedule trial"]),
                                     ("the scored window's start", score["from"], self.trial_seen["score"])):
                problem = whole_steps(float(value), float(dt), what)  # type: ignore[arg-type]
                if problem is not None:
                    raise self.error(problem, pos)

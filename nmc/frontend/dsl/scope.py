"""What the statements so far have defined, and looking names up in it.

Names may be used only after their definition. Before the statements run, the builder records
where every population, neuron and rule is declared, so that a use before the definition says
where the definition is; an unknown name gets a did-you-mean hint instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lark import Token, Tree

from ...ir.network import Network, Population
from .values import Evaluator, Pos, did_you_mean, token_pos, tree_pos


@dataclass(kw_only=True)
class Scope(Evaluator):
    """The network being built and where each of its objects is written; part of the builder."""

    net: Network = field(default_factory=Network)
    #: Statement position of every created object, keyed ("population" | "projection" | "probe", name);
    #: used to locate problems found by the IR verifier.
    created: dict[tuple[str, str], Pos] = field(default_factory=dict)
    #: Where each population / neuron / rule is defined, to explain a use before the definition.
    declared: dict[tuple[str, str], Pos] = field(default_factory=dict)

    def _collect_declarations(self, statements: list[Tree]) -> None:
        kinds = {"neuron_stmt": "neuron", "input_stmt": "population", "population_stmt": "population",
                 "rule_stmt": "rule"}
        for stmt in statements:
            kind = kinds.get(stmt.data)
            if kind is not None:
                self.declared.setdefault((kind, stmt.children[0].value), tree_pos(stmt))

    # -- populations ------------------------------------------------------------------------------
    def _check_new_population(self, tok: Token) -> None:
        if ("population", tok.value) in self.created:
            first = self.created["population", tok.value].line
            raise self.error(f"population '{tok.value}' is defined twice (first at line {first})", token_pos(tok))

    def _add_population(self, pop: Population, stmt: Tree) -> None:
        self.net.add_population(pop)
        self.created["population", pop.name] = tree_pos(stmt)

    def _lookup_population(self, tok: Token) -> Population:
        return self._population_named(tok.value, token_pos(tok))

    def _population_named(self, name: str, pos: Pos) -> Population:
        if ("population", name) in self.created:
            return self.net.population(name)
        later = self.declared.get(("population", name))
        if later is not None:
            raise self.error(f"population '{name}' is used before its definition at line {later.line}", pos)
        known = [p.name for p in self.net.populations]
        raise self.error(f"unknown population '{name}'{did_you_mean(name, known)}", pos)

    # -- projections ------------------------------------------------------------------------------
    def _projection_name(self, tok: Token | None, pre: str, post: str) -> str:
        if tok is None:
            return self.net.unique_projection_name(pre, post)
        if ("projection", tok.value) in self.created:
            first = self.created["projection", tok.value].line
            raise self.error(f"projection '{tok.value}' is defined twice (first at line {first})", token_pos(tok))
        return tok.value

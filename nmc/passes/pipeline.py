"""Pipeline strings (``verify,quantize,partition{solver=first-fit}``) and the runner that
applies them, with IR dumps before/after passes (``--print-ir-after-all`` and friends)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..errors import PipelineError
from ..ir.network import Network
from ..ir.printer import format_ir
from .registry import PassContext, convert_option, get_pass

_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*(?:\{([^{}]*)\})?\s*(?:,|$)")


@dataclass(frozen=True)
class PipelineStep:
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.options:
            return self.name
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name}{{{opts}}}"


def parse_pipeline(text: str) -> list[PipelineStep]:
    """Parse ``name{opt=value,...},name,...``; unknown passes and options are errors."""
    steps: list[PipelineStep] = []
    pos = 0
    text = text.strip()
    if not text:
        return steps
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m or m.end() == pos:
            raise PipelineError(f"malformed pass pipeline at character {pos + 1}: '{text[pos:]}'")
        info = get_pass(m.group(1))
        opts: dict[str, Any] = {}
        if m.group(2):
            for kv in m.group(2).split(","):
                if "=" not in kv:
                    raise PipelineError(f"pass '{info.name}': option '{kv.strip()}' needs the form key=value")
                k, v = (s.strip() for s in kv.split("=", 1))
                opts[k] = convert_option(info, k, v)
        steps.append(PipelineStep(info.name, opts))
        pos = m.end()
    return steps


@dataclass
class DumpOptions:
    after_all: bool = False
    before_all: bool = False
    after: set[str] = field(default_factory=set)
    before: set[str] = field(default_factory=set)
    stream: TextIO | None = None

    def _emit(self, when: str, name: str, net: Network) -> None:
        out = self.stream or sys.stderr
        out.write(f"// -----// IR Dump {when} {name} //----- //\n")
        out.write(format_ir(net))
        out.flush()


def run_pipeline(net: Network, steps: list[PipelineStep], ctx: PassContext,
                 dump: DumpOptions | None = None) -> Network:
    """Apply ``steps`` in order; dump the IR where ``dump`` asks."""
    dump = dump or DumpOptions()
    for step in steps:
        info = get_pass(step.name)
        if dump.before_all or step.name in dump.before:
            dump._emit("Before", step.name, net)
        try:
            net = info.fn(net, ctx, **step.options)
        finally:
            ctx.diagnostics.flush()  # what the pass reported, before its IR dump or error
        if dump.after_all or step.name in dump.after:
            dump._emit("After", step.name, net)
    return net

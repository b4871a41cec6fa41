"""Structural checks of a network, independent of any target."""

from __future__ import annotations

import weakref

import numpy as np

from ..errors import IrError, NmcError
from ..numbers import is_integer, is_number
from .annotations import check_annotations
from .eprop import eprop_rule, is_eprop, trial_spec
from .models import NEURON_MODELS, PROBE_VARIABLES
from .network import CONNECTIVITIES, ROLES, SIGNS, Network, Projection


def _has_duplicates(keys: np.ndarray) -> bool:
    """Whether any key repeats (a sort and a neighbour compare: on 10^6 keys much faster than
    np.unique, whose hash-based path numpy 2.3+ takes for integers)."""
    s = np.sort(keys)
    return bool(np.any(s[1:] == s[:-1]))


def verify_problems(net: Network) -> list[tuple[str, str]]:
    """Every violation as (location, message); empty when the network is well formed."""
    probs: list[tuple[str, str]] = _annotation_problems(net)
    seed = net.attrs.get("seed", 0)
    if not is_integer(seed) or seed < 0:
        probs.append(("network", f"seed must be a non-negative integer, got {seed!r}"))
    dt = net.attrs.get("dt")
    if dt is not None and not (is_number(dt) and dt > 0):
        probs.append(("network", f"dt must be a positive time in ms, got {dt!r}"))
    for pop in net.populations:
        loc = f"population '{pop.name}'"
        if not isinstance(pop.size, int) or pop.size <= 0:
            probs.append((loc, f"size must be a positive integer, got {pop.size!r}"))
            continue
        model = NEURON_MODELS.get(pop.model)
        if model is None:
            probs.append((loc, f"unknown neuron model '{pop.model}' (known: {', '.join(sorted(NEURON_MODELS))})"))
            continue
        if pop.role not in ROLES:
            probs.append((loc, f"role must be one of {', '.join(ROLES)}, got '{pop.role}'"))
        if model.spiking_source_only and pop.role != "input":
            probs.append((loc, f"model '{pop.model}' is only valid for role 'input'"))
        if not model.spiking_source_only and pop.role == "input":
            probs.append((loc, "role 'input' needs model 'input'"))
        for key, val in pop.params.items():
            spec = model.params.get(key)
            if spec is None:
                known = ", ".join(sorted(model.params)) or "none"
                probs.append((loc, f"unknown parameter '{key}' for neuron model '{pop.model}' (known: {known})"))
                continue
            try:
                arr = np.asarray(val)
            except ValueError:  # a ragged list
                probs.append((loc, f"parameter '{key}' must be a number or a list of numbers"))
                continue
            if arr.ndim > 0 and not (spec.per_neuron and arr.shape == (pop.size,)):
                want = f"a scalar or {pop.size} values" if spec.per_neuron else "a scalar"
                probs.append((loc, f"parameter '{key}' must be {want}, got shape {arr.shape}"))
            elif arr.dtype.kind not in "biuf":
                probs.append((loc, f"parameter '{key}' must be numeric, got {val!r}"))
            elif arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                probs.append((loc, f"parameter '{key}' contains NaN or infinity"))
    sizes = {p.name: p.size for p in net.populations}
    for proj in net.projections:
        loc = f"projection '{proj.name}'"
        n_pre, n_post = sizes.get(proj.pre), sizes.get(proj.post)
        if n_pre is None or n_post is None:
            continue
        if net.population(proj.post).is_input:
            probs.append((loc, f"cannot project onto input population '{proj.post}'"))
        c = proj.connectivity
        if c not in CONNECTIVITIES:
            probs.append((loc, f"connectivity must be one of {', '.join(CONNECTIVITIES)}, got '{c}'"))
            continue
        probs.extend((loc, msg) for msg in _checked_arrays(proj, n_pre, n_post))
        if not isinstance(proj.delay, int) or proj.delay < 0:
            probs.append((loc, f"delay must be a non-negative integer, got {proj.delay!r}"))
        if proj.sign is not None and proj.sign not in SIGNS:
            probs.append((loc, f"sign must be one of {', '.join(SIGNS)}, got '{proj.sign}'"))
        if proj.exponent is not None and not isinstance(proj.exponent, int):
            probs.append((loc, f"exponent must be an integer, got {proj.exponent!r}"))
    probs += _eprop_problems(net)
    for probe in net.probes:
        loc = f"probe '{probe.name}'"
        if probe.population not in sizes:
            probs.append((loc, f"unknown population '{probe.population}'"))
            continue
        allowed = PROBE_VARIABLES.get(net.population(probe.population).model, ("spikes",))
        if probe.variable not in allowed:
            probs.append((loc, f"variable '{probe.variable}' cannot be probed on model "
                               f"'{net.population(probe.population).model}' (allowed: {', '.join(allowed)})"))
    return probs


def _annotation_problems(net: Network) -> list[tuple[str, str]]:
    try:
        check_annotations(net.attrs)
    except NmcError as exc:
        return [(exc.location or "network", exc.message)]
    return []


def _array_problems(proj: Projection, n_pre: int, n_post: int) -> list[str]:
    """The checks of a projection's arrays (dtype, finiteness, shapes, index ranges, repeated
    synapses): the part of verification whose cost grows with the synapses."""
    probs: list[str] = []
    w = np.asarray(proj.weights)
    if w.dtype.kind not in "biuf":
        return [f"weights must be numeric, got dtype {w.dtype}"]
    if not np.all(np.isfinite(w)):
        probs.append("weights contain NaN or infinity")
    c = proj.connectivity
    if c == "dense" and w.shape != (n_pre, n_post):
        probs.append(f"dense weights must have shape ({n_pre}, {n_post}), got {w.shape}")
    elif c == "one_to_one":
        if n_pre != n_post:
            probs.append(f"one_to_one needs equal sizes, got {n_pre} -> {n_post}")
        elif w.shape != (n_pre,):
            probs.append(f"one_to_one weights must have shape ({n_pre},), got {w.shape}")
    elif c == "one_to_all" and w.shape != (n_pre,):
        probs.append(f"one_to_all weights must have shape ({n_pre},), got {w.shape}")
    elif c == "sparse":
        if proj.pre_index is None or proj.post_index is None:
            probs.append("sparse projection needs pre_index and post_index")
        else:
            pi, qi = np.asarray(proj.pre_index), np.asarray(proj.post_index)
            if pi.dtype.kind not in "iu" or qi.dtype.kind not in "iu":
                probs.append(f"sparse indices must be integers, got pre_index {pi.dtype}, "
                             f"post_index {qi.dtype}")
            elif not (pi.shape == qi.shape == w.shape and w.ndim == 1):
                probs.append(f"sparse arrays must be 1-D of equal length, got pre_index {pi.shape}, "
                             f"post_index {qi.shape}, weights {w.shape}")
            elif pi.size and (pi.min() < 0 or pi.max() >= n_pre or qi.min() < 0 or qi.max() >= n_post):
                probs.append(f"sparse indices out of range (pre size {n_pre}, post size {n_post})")
            elif pi.size > 1 and _has_duplicates(pi.astype(np.int64) * n_post + qi):
                probs.append("sparse projection lists the same synapse twice")
    return probs


def _refs(proj: Projection) -> tuple:
    """Weak references to a projection's arrays, to recognise them later without keeping them."""
    out = []
    for a in (proj.weights, proj.pre_index, proj.post_index):
        try:
            out.append(weakref.ref(a) if a is not None else None)
        except TypeError:  # not weak-referenceable (a list): always check again
            return ()
    return tuple(out)


def _checked_arrays(proj: Projection, n_pre: int, n_post: int) -> list[str]:
    """:func:`_array_problems`, skipped when the same arrays (the very objects, still alive) were
    found well formed for the same connectivity and sizes before. The default pipeline verifies
    twice, around backprop and synfire, which add projections but leave the others' arrays alone;
    a pass that changes a checked array in place is not noticed (nmc's passes replace arrays)."""
    arrays = (proj.weights, proj.pre_index, proj.post_index)
    seen = getattr(proj, "_verified", None)
    if seen is not None:
        refs, sig = seen
        if sig == (proj.connectivity, n_pre, n_post) and refs and all(
                (r is None and a is None) or (r is not None and r() is a) for r, a in zip(refs, arrays)):
            return []
    probs = _array_problems(proj, n_pre, n_post)
    if not probs:
        proj._verified = (_refs(proj), (proj.connectivity, n_pre, n_post))  # type: ignore[attr-defined]
    return probs


def verify_network(net: Network) -> None:
    """Raise :class:`IrError` listing every violation, one per line."""
    probs = verify_problems(net)
    if probs:
        first_loc, first_msg = probs[0]
        rest = "".join(f"\n{loc}: error: {msg}" for loc, msg in probs[1:])
        raise IrError(first_msg + rest, location=first_loc)


#: Models an e-prop projection may end on: the adaptive neuron and the readout, target-neutral or
#: already lowered to the SpiNNaker-like chip's words.
EPROP_POSTS = ("alif", "li", "eprop_alif", "eprop_li")
READOUTS = ("li", "eprop_li")


def _eprop_problems(net: Network) -> list[tuple[str, str]]:
    """e-prop rules and the trial structure (docs/eprop.md): rules on alif / li posts with delay 0,
    one rule for the network, a scored li readout with a target port of its size."""
    probs: list[tuple[str, str]] = []
    try:
        trial = trial_spec(net.attrs)
    except IrError as exc:
        return [(exc.location or "network", exc.message)]
    rules = []
    for proj in net.projections:
        if not is_eprop(proj.learning):
            continue
        loc = f"projection '{proj.name}'"
        try:
            rules.append((proj.name, eprop_rule(proj.learning, loc)))
        except IrError as exc:
            probs.append((loc, exc.message))
            continue
        post = net.population(proj.post)
        if post.model not in EPROP_POSTS:
            probs.append((loc, f"an e-prop projection must end on an 'alif' or 'li' population, not "
                               f"'{post.model}'"))
        if proj.delay != 0:
            probs.append((loc, f"an e-prop projection has delay 0, got {proj.delay}"))
    clash = eprop_rule_clash(net)
    if clash is not None:
        probs.append((f"projection '{clash[0]}'", clash[1]))
    if rules and (trial is None or trial["score"] is None):
        probs.append(("network", "e-prop rules need trials with a scored readout (attrs 'trial' with 'score')"))
    if trial is not None and trial["score"] is not None:
        score = trial["score"]
        names = {p.name for p in net.populations}
        pop, target = score["population"], score["target"]
        if pop not in names or target not in names:
            probs.append(("network", f"the score names an unknown population '{pop if pop not in names else target}'"))
        else:
            if net.population(pop).model not in READOUTS:
                probs.append((f"population '{pop}'", "the scored population must be a leaky readout ('li')"))
            if not net.population(target).is_input or net.population(target).size != net.population(pop).size:
                probs.append((f"population '{target}'", f"the score target must be an input port of "
                                                        f"{net.population(pop).size} units"))
    return probs


def eprop_rule_clash(net: Network) -> tuple[str, str] | None:
    """(projection, message) when e-prop rules disagree: one learning signal per network, so they may
    differ only in eta and w_max, and the projections into one population share its eta and w_max
    (a per-neuron factor and the population's weight scale)."""
    first, per_post = None, {}
    for proj in net.projections:
        if not is_eprop(proj.learning):
            continue
        rest = {k: v for k, v in proj.learning.items() if k not in PER_POPULATION}
        if first is None:
            first = (proj.name, rest)
        elif rest != first[1]:
            return proj.name, (f"e-prop rules may differ only in eta and w_max (one learning signal per network); "
                               f"'{proj.name}' differs from '{first[0]}'")
        for key in PER_POPULATION:
            value = proj.learning.get(key)
            seen = per_post.setdefault((proj.post, key), (proj.name, value))
            if seen[1] != value:
                return proj.name, (f"the e-prop projections into '{proj.post}' must share one {key} "
                                   f"('{seen[0]}' has {seen[1]}, this one {value})")
    return None


#: Rule settings that belong to the post population on the chip (and so may differ between rules).
PER_POPULATION = ("eta", "w_max")

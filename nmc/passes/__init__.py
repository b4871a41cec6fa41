"""Passes over the IR: a registry of named passes and the pipeline runner."""

from .pipeline import DumpOptions, PipelineStep, parse_pipeline, run_pipeline
from .registry import PassContext, all_passes, get_pass, register_pass

__all__ = ["PassContext", "register_pass", "get_pass", "all_passes", "parse_pipeline", "run_pipeline",
           "PipelineStep", "DumpOptions"]

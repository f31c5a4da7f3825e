"""A ComfyUI custom-node package: SIGMAS from a schedopt schedule card or sigma file.

Install: make schedopt importable in ComfyUI's Python (``pip install schedopt``, or
``pip install -e`` this checkout), then copy or link this folder into ComfyUI's
``custom_nodes/`` under any name but ``schedopt``::

    folder=$(python -c 'import schedopt.integrations.comfyui as m; print(m.__path__[0])')
    ln -s "$folder" ComfyUI/custom_nodes/schedopt_sigmas

ComfyUI then lists **schedopt schedule (SIGMAS)** under ``sampling/custom_sampling/schedulers``
(:class:`~.nodes.ScheduleSigmas`); plug its SIGMAS into ``SamplerCustom`` or
``SamplerCustomAdvanced``. The folder lives inside the schedopt package so that it is
installed with it and always matches the installed schedopt (the node regrids cards with
schedopt's own schedules); it imports only relatively and loads schedopt when run.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, ScheduleSigmas, node_sigmas

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "ScheduleSigmas", "node_sigmas"]

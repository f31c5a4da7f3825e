"""Using schedopt's schedules in other libraries, each in its own submodule.

Nothing here is imported by ``import schedopt`` or ``import schedopt.integrations``: each
submodule imports its library (torch, diffusers) when it is imported itself.

- :mod:`schedopt.integrations.diffusers`: apply a card or schedule to a diffusers
  scheduler or pipeline in one call (:func:`~schedopt.integrations.diffusers.apply_schedule`);
- :mod:`schedopt.integrations.kdiffusion`: sigmas for a k-diffusion denoiser, fitted into
  its noise range;
- :mod:`schedopt.integrations.comfyui`: a ComfyUI custom-node package (copy or link its
  folder into ``ComfyUI/custom_nodes/``);
- :mod:`schedopt.integrations.testing`: closed-form Gaussian models in torch that count
  their calls, to check an integration without weights.
"""

__all__: list[str] = []

"""``import schedopt`` (and the integrations package, and the ComfyUI node folder) never
imports torch or diffusers: they are imported when an integration is used."""

import subprocess
import sys


def test_importing_schedopt_and_the_integrations_needs_no_torch():
    code = (
        "import sys, schedopt, schedopt.io, schedopt.integrations, "
        "schedopt.integrations.comfyui, schedopt.integrations.diffusers, "
        "schedopt.integrations.kdiffusion, schedopt.integrations.testing; "
        "bad = [m for m in ('torch', 'diffusers', 'k_diffusion') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]

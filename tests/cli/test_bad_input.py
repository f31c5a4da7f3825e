"""Bad input and faults on the command line, one row per case.

Each row is ``(argv, exit code, fragment of the message on stderr)``, run in-process
through :func:`schedopt.cli.main`. ``{tmp}``, ``{file}``, ... in ``argv`` and in the
fragment are replaced by the paths of :func:`paths`. After every row the temporary
directory must be exactly as before: validation happens before anything is written, and
a run that fails removes what it added. Exit status 2: the input was refused; 1: the run
failed. :func:`test_every_option_has_a_row` keeps the table growing with the options:
every option of every command (flags aside; ``export`` is covered by its own tests)
must appear in at least one row.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from schedopt.cli import build_parser, main
from schedopt.io.atomic import DirectoryLock
from schedopt.io.card import make_card, save_card
from schedopt.schedules import EDM

FAST = ["--eigenvalues", "0.3,1,2", "--num-steps", "4", "--num-knots", "6", "--no-progress"]
OPT = ["optimize", "--out", "{run}"]
CR = [*OPT, "--objective", "constant-rate"]
SW = [*OPT, "--objective", "score-work"]
TJ = [*OPT, "--objective", "trajectory"]
TRAIN = ["train", "--out", "{run}", "--dataset", "ring"]
EV = ["evaluate", "--samples", "{good_npy}", "--dataset", "ring"]
AN = ["analyze", "--num-samples", "16", "--num-steps", "2"]

CASES = [
    # ---- optimize: common options --------------------------------------------------
    ([*OPT, "--objective", "magic"], 2, "argument --objective: 'magic' is not an objective"),
    ([*OPT, "--objective", "no_such.mod"], 2, "--objective: 'no_such.mod': no module named"),
    ([*OPT, "--num-steps", "0"], 2, "argument --num-steps: must be an integer from 1 to 10000, go"),
    ([*OPT, "--num-steps", "10000000"], 2, "argument --num-steps: must be an integer from 1 to 10"),
    ([*OPT, "--num-steps", "10000", "--spectrum", "power-law:100000"], 2, "entries per step map"),
    # --nfe: the deprecated spelling of --num-steps (the same number, with a warning)
    ([*OPT, "--nfe", "0"], 2, "argument --nfe: must be an integer from 1 to 10000, got '0'"),
    ([*OPT, "--nfe", "4", "--num-steps", "4"], 2, "--num-steps: not allowed with argument --nfe"),
    # 10 is --num-steps' default (and a cached small int): still refused, in either order
    ([*OPT, "--nfe", "4", "--num-steps", "10"], 2, "--num-steps: not allowed with argument --nfe"),
    ([*OPT, "--num-steps", "10", "--nfe", "4"], 2, "--nfe: not allowed with argument --num-steps"),
    ([*OPT, "--nfe", "4", "--family", "edm", "--num-knots", "8"], 2, "warning: --nfe is deprec"),
    ([*OPT, "--solver", "magic"], 2, "--solver 'magic' is not a solver of --objective gaussian"),
    ([*OPT, "--final", "max"], 2, "argument --final: invalid choice: 'max'"),
    ([*OPT, "--family", "nope"], 2, "argument --family: invalid choice: 'nope'"),
    ([*OPT, "--num-knots", "0"], 2, "argument --num-knots: must be an integer from 1 to 4096"),
    ([*OPT, "--family", "edm", "--num-knots", "8"], 2, "--num-knots applies to the knot"),
    ([*OPT, "--family", "monotone-mlp", "--num-knots", "8"], 2, "not --family monotone-mlp"),
    ([*OPT, "--init-from", "monotone-cubic"], 2, "argument --init-from: invalid choice"),
    ([*OPT, "--family", "edm", "--init-from", "cosine"], 2, "--init-from applies to learnable"),
    ([*OPT, "--init-card", "{tmp}/none.json"], 2, "--init-card {tmp}/none.json: "),
    ([*OPT, "--init-card", "{nan_card}"], 2, "--init-card {nan_card}: "),
    ([*OPT, "--init-card", "{good_card}", "--init-from", "cosine"], 2, "two starts: give one"),
    ([*OPT, "--init-card", "{good_card}", "--sigma-min", "0.01"], 2, "differs from the range"),
    ([*OPT, "--family", "edm", "--init-card", "{good_card}"], 2, "--init-card applies to learn"),
    ([*OPT, "--sigma-min", "-1"], 2, "argument --sigma-min: -1.0 is not a positive finite"),
    # 1e308 used to be reported as inf, then as the internal `logsnrs`
    ([*OPT, "--sigma-max", "1e308"], 2, "--sigma-max: 1e+308 is outside the noise levels"),
    ([*OPT, "--sigma-min", "1e-30"], 2, "float32 can square (1.08e-19 to 1.84e+19); pass --x64"),
    ([*OPT, "--sigma-min", "80", "--sigma-max", "1"], 2, "--sigma-max (1) must be at least 1.01"),
    ([*OPT, "--sigma-min", "0.002", "--sigma-max", "0.0020001"], 2, "must be at least 1.01 x"),
    ([*OPT, "--iterations", "0"], 2, "argument --iterations: must be an integer from 1"),
    ([*OPT, "--iterations", "100000000000"], 2, "argument --iterations: must be an integer"),
    ([*OPT, "--lr", "0"], 2, "argument --lr: must be a number > 0, got '0'"),
    ([*OPT, "--lr", "nan"], 2, "argument --lr: must be a number > 0, got 'nan'"),
    # used to return a schedule 14,000x worse than its start without a word
    ([*OPT, *FAST, "--lr", "1e6", "--iterations", "30"], 1, "lower --lr (now 1e+06)"),
    ([*OPT, "--seed", "-1"], 2, "argument --seed: must be an integer from 0 to 4294967295"),
    ([*OPT, "--seed", "100000000000000000000"], 2, "argument --seed: must be an integer from 0"),
    (["optimize", "--out", "{file}"], 2, "--out '{file}' exists and is not a directory"),
    (["optimize", "--out", "{file}/run"], 2, "cannot be created: '{file}' is not a directory"),
    (["optimize", *FAST, "--out", "{linked}"], 2, "'log.jsonl' in it is a symbolic link"),
    ([*OPT, "--checkpoint-every", "10"], 2, "--checkpoint-every applies with --resume only"),
    ([*OPT, "--resume", "--checkpoint-every", "0"], 2, "argument --checkpoint-every"),
    ([*OPT, "--no-progress", "--spectrum", "{tmp}/gone.npy"], 2, "'{tmp}/gone.npy': file not"),
    # ---- optimize: --learn-range ----------------------------------------------------
    ([*OPT, "--range-bounds", "0.002,160"], 2, "--range-bounds applies with --learn-range only"),
    ([*OPT, "--learn-range"], 2, "--learn-range needs --init ve or vp: with --init exact"),
    ([*CR, "--learn-range"], 2, "--learn-range does not apply to --objective constant-rate"),
    ([*SW, "--learn-range"], 2, "--learn-range does not apply to --objective score-work"),
    ([*OPT, "--time-inputs", "4"], 2, "--time-inputs does not apply to --objective gaussian-kl"),
    ([*OPT, "--time-inputs", "1"], 2, "--time-inputs"),
    ([*OPT, "--learn-range", "--init", "ve", "--range-bounds", "0.01,160"], 2, "must contain"),
    ([*OPT, "--learn-range", "--range-bounds", "160,0.01"], 2, "must satisfy LO < HI, got '160"),
    ([*OPT, "--learn-range", "--range-bounds", "1"], 2, "must be two noise levels LO,HI, got"),
    ([*OPT, "--learn-range", "--range-bounds", "0,1"], 2, "0.0 is not a positive finite noise"),
    # ---- optimize: solver options (applied where the solver has them) ---------------
    ([*OPT, "--eta", "0.5"], 2, "--eta does not apply to --solver euler with --objective"),
    ([*OPT, "--solver", "heun", "--eta", "0.5"], 2, "(solvers that take it: ancestral, dpmpp-2m-s"),
    ([*OPT, "--solver", "ancestral", "--eta", "2"], 2, "argument --eta: must be a number >= 0"),
    ([*OPT, "--kappa", "0.5"], 2, "--kappa does not apply to --solver euler"),
    ([*OPT, "--solver", "euler-maruyama", "--kappa", "0"], 2, "argument --kappa: must be a"),
    ([*OPT, "--process", "ve"], 2, "--process does not apply to --solver euler"),
    ([*OPT, "--process", "flow"], 2, "argument --process: invalid choice: 'flow'"),
    ([*OPT, "--solver", "euler-maruyama", "--noise", "uniform"], 2, "(solvers that take it: none)"),
    ([*TJ, "--init", "exact"], 2, "--init exact needs clean data samples, which --objective tra"),
    ([*TJ, "--noise", "pink"], 2, "argument --noise: invalid choice: 'pink'"),
    ([*TJ, "--solver", "heun", "--noise", "uniform"], 2, "--noise does not apply to --solver heun"),
    # ---- optimize: gaussian-kl -------------------------------------------------------
    ([*OPT, "--spectrum", "{tmp}/missing.npy"], 2, "cannot read --spectrum '{tmp}/missing.npy'"),
    ([*OPT, "--spectrum", "{empty_npy}"], 2, "it is empty (0 bytes), not a NumPy .npy file"),
    # a text file used to be reported as "pickled data"
    ([*OPT, "--spectrum", "{text_npy}"], 2, "it is not a NumPy .npy file (no .npy header"),
    ([*OPT, "--spectrum", "{complex_npy}"], 2, "eigenvalues must be real, got complex values"),
    ([*OPT, "--spectrum", "{none_npy}"], 2, "must hold a 1-D list of 1 to 10000000 eigenvalues"),
    ([*OPT, "--spectrum", "{matrix_npy}"], 2, "got shape (2, 2)"),
    ([*OPT, "--spectrum", "power-law:0"], 2, "needs 1 <= DIM <= 10000000"),
    ([*OPT, "--spectrum", "nonsense"], 2, "unknown --spectrum 'nonsense'"),
    # "-1,1" used to be read by argparse as an option
    ([*OPT, "--eigenvalues", "-1,1"], 2, "--eigenvalues: eigenvalues must be finite and > 0"),
    ([*OPT, "--eigenvalues", "1,x"], 2, "--eigenvalues must be comma-separated numbers"),
    ([*OPT, "--eigenvalues", "1e-12"], 2, "below what float32 resolves (1e-12); pass --x64"),
    ([*OPT, "--spectrum", "digits", "--eigenvalues", "1"], 2, "not both"),
    ([*OPT, "--init", "magic"], 2, "argument --init: invalid choice: 'magic'"),
    ([*OPT, "--direction", "up"], 2, "argument --direction: invalid choice: 'up'"),
    ([*TJ, "--direction", "reverse"], 2, "--direction applies to --objective gaussian-kl, not"),
    ([*OPT, "--measure", "fd"], 2, "--measure applies to --objective constant-rate, not gaussian"),
    # ---- optimize: sample-based objectives -------------------------------------------
    ([*TJ, "--dataset", "nope"], 2, "argument --dataset: invalid choice: 'nope'"),
    ([*TJ, "--batch-size", "0"], 2, "argument --batch-size: must be an integer from 1"),
    ([*OPT, "--objective", "mmd", "--num-data", "0"], 2, "argument --num-data"),
    ([*TJ, "--num-data", "100"], 2, "--num-data applies to --objective frechet or mmd or"),
    ([*OPT, "--objective", "mmd", "--reference-steps", "9"], 2, "--reference-steps applies to"),
    ([*TJ, "--reference-steps", "0"], 2, "argument --reference-steps"),
    ([*TJ, "--torch-model", "{tmp}/nowhere"], 2, "no such directory, and not a module:factory"),
    ([*TJ, "--torch-model", "os:nothing_here"], 2, "cannot import 'nothing_here' from 'os'"),
    ([*TJ, "--torch-prediction", "eps"], 2, "--torch-prediction applies with --torch-model only"),
    ([*TJ, "--torch-data", "{good_npy}"], 2, "--torch-data applies with --torch-model only"),
    ([*TJ, "--torch-model", "{tmp}", "--dataset", "gmm64"], 2, "with --torch-model give --torch"),
    ([*TJ, "--patience", "0"], 2, "argument --patience: must be an integer from 1"),
    ([*TJ, "--patience", "2", "--resume"], 2, "--patience cannot be combined with --resume"),
    ([*OPT, "--patience", "2"], 2, "--patience applies to --objective trajectory, not"),
    ([*TJ, "--num-pairs", "1"], 2, "argument --num-pairs: must be an integer from 2"),
    ([*OPT, "--objective", "mmd", "--num-pairs", "64"], 2, "--num-pairs applies to --objective"),
    ([*TJ, "--solver", "magic"], 2, "is not a solver of --objective trajectory; choose one of"),
    ([*TJ, "--spectrum", "digits"], 2, "--spectrum applies to --objective gaussian-kl, not"),
    # ---- optimize: constant-rate -----------------------------------------------------
    ([*CR, "--measure", "kl"], 2, "--measure must be fd, x0, eps or a comma-separated mix"),
    ([*CR, "--measure-weights", "1,2"], 2, "--measure-weights applies to a mixed --measure"),
    ([*CR, "--measure", "fd,x0", "--measure-weights", "1"], 2, "needs 2 non-negative numbers"),
    ([*CR, "--xi", "-1"], 2, "argument --xi: must be a number >= 0 and <= 100"),
    ([*CR, "--speed-variable", "sigma"], 2, "argument --speed-variable: invalid choice"),
    ([*CR, "--measure-dataset", "nope"], 2, "argument --measure-dataset: invalid choice"),
    ([*CR, "--measure", "x0", "--measure-denoiser", "{tmp}/no"], 2, "is not a saved network"),
    ([*CR, "--measure-denoiser", "{tmp}"], 2, "--measure-denoiser applies to --measure x0 or"),
    ([*CR, "--measure-features", "pixels"], 2, "argument --measure-features: invalid choice"),
    ([*CR, "--measure", "x0", "--measure-features", "classifier"], 2, "applies to --measure fd"),
    ([*CR, "--measure-dataset", "ring", "--measure-features", "classifier"], 2, "needs --meas"),
    ([*CR, "--measure-samples", "1"], 2, "argument --measure-samples: must be an integer from 2"),
    ([*CR, "--speed-points", "2"], 2, "argument --speed-points: must be an integer from 3"),
    ([*CR, "--solver", "heun"], 2, "--solver does not apply: --objective constant-rate has no"),
    ([*CR, "--eta", "0.5"], 2, "--eta does not apply: --objective constant-rate has no sampler"),
    # ---- optimize: score-work --------------------------------------------------------
    ([*SW, "--cost", "magic"], 2, "argument --cost: invalid choice: 'magic'"),
    ([*SW, "--cost-dataset", "nope"], 2, "argument --cost-dataset: invalid choice"),
    ([*SW, "--cost-denoiser", "{tmp}/nowhere"], 2, "--cost-denoiser '{tmp}/nowhere' is not a"),
    ([*SW, "--cost-velocity", "fast"], 2, "argument --cost-velocity: invalid choice"),
    ([*SW, "--cost-trace", "hutchinson"], 2, "--cost-trace applies to --cost predictor only"),
    ([*SW, "--cost", "predictor", "--cost-trace", "bad"], 2, "argument --cost-trace: invalid"),
    ([*SW, "--cost-samples", "0"], 2, "argument --cost-samples: must be an integer from 1"),
    ([*SW, "--cost-intervals", "1"], 2, "argument --cost-intervals: must be an integer from 2"),
    ([*SW, "--process", "ve"], 2, "--process does not apply: --objective score-work has no"),
    # ---- kl --------------------------------------------------------------------------
    (["kl", "--sigmas", "1,2,0", "--eigenvalues", "1"], 2, "strictly decreasing"),
    (["kl", "--sigmas", "1,x", "--eigenvalues", "1"], 2, "--sigmas must be comma-separated"),
    (["kl", "--sigmas", "80", "--eigenvalues", "1"], 2, "--sigmas needs 2 to 10001 noise"),
    (["kl", "--sigmas", "1e308,1,0", "--eigenvalues", "1"], 2, "entry 0 1e+308 is outside"),
    (["kl", "--sigmas", "2,1,0", "--eigenvalues", "1,-1"], 2, "must be finite and > 0"),
    (["kl", "--sigmas", "2,1,0", "--eigenvalues", ""], 2, "comma-separated numbers, got ''"),
    (["kl", "--sigmas", "80,1,0", "--eigenvalues", "1e-12"], 2, "1.6e-16 of the largest noise"),
    (["kl", "--sigmas", "2,1,0"], 2, "give --eigenvalues or --spectrum"),
    (["kl", "--sigmas", "2,0", "--spectrum", "digits", "--eigenvalues", "1"], 2, "not both"),
    (["kl", "--sigmas", "2,0", "--spectrum", "{text_npy}"], 2, "it is not a NumPy .npy file"),
    (["kl", "--sigmas", "2,0", "--spectrum", "{none_npy}"], 2, "1 to 10000000 eigenvalues"),
    (["kl", "--sigmas", "2,0", "--eigenvalues", "1", "--solver", "magic"], 2, "invalid choice"),
    (["kl", "--sigmas", "2,0", "--eigenvalues", "1", "--init", "magic"], 2, "--init: invalid"),
    (["kl", "--sigmas", "2,0", "--eigenvalues", "1", "--direction", "up"], 2, "--direction: in"),
    # ---- baseline --------------------------------------------------------------------
    (["baseline", "nope", "--num-steps", "3"], 2, "argument NAME: invalid choice: 'nope'"),
    (["baseline", "edm"], 2, "--num-steps is required: the number of sampler steps N"),
    (["baseline", "edm", "--nfe", "0"], 2, "argument --nfe: must be an integer from 1 to"),
    (["baseline", "edm", "--nfe", "3", "--rho", "0"], 2, "argument --rho: must be a number > 0"),
    (["baseline", "edm", "--num-steps", "0"], 2, "argument --num-steps: must be an integer from 1"),
    (["baseline", "edm", "--num-steps", "4000000"], 2, "argument --num-steps: must be an integer"),
    (["baseline", "edm", "--num-steps", "3", "--final", "max"], 2, "argument --final: invalid"),
    (["baseline", "edm", "--num-steps", "3", "--range", "1,80", "--sigma-max", "9"], 2, "not both"),
    (["baseline", "edm", "--num-steps", "3", "--range", "80,1"], 2, "argument --range: must satis"),
    (["baseline", "cosine", "--num-steps", "3", "--rho", "3"], 2, "--rho does not apply to 'cosin"),
    (["baseline", "edm", "--num-steps", "3", "--rho", "0"], 2, "argument --rho: must be a number"),
    (["baseline", "tangent", "--num-steps", "3", "--gamma", "0"], 2, "argument --gamma: must be"),
    (["baseline", "cosine", "--num-steps", "3", "--shift", "-1"], 2, "argument --shift: must be"),
    (["baseline", "laplace", "--num-steps", "3", "--mu", "1e9"], 2, "argument --mu: must be a num"),
    (["baseline", "laplace", "--num-steps", "3", "--b", "0"], 2, "argument --b: must be a number"),
    (["baseline", "vp-linear", "--num-steps", "3", "--beta-min", "0"], 2, "argument --beta-min: m"),
    (["baseline", "vp-linear", "--num-steps", "3", "--beta-max", "-1"], 2, "argument --beta-max:"),
    # NaN sigmas with exit 0 before
    (["baseline", "edm", "--num-steps", "5", "--sigma-min", "1e-320"], 2, "--sigma-min: 1e-320 is"),
    (["baseline", "edm", "--num-steps", "5", "--sigma-max", "inf"], 2, "--sigma-max: inf is not a"),
    (
        ["baseline", "edm", "--num-steps", "3", "--sigma-min", "9", "--sigma-max", "2"],
        2,
        "must be bel",
    ),
    (
        ["baseline", "polyexponential", "--rho", "1000", "--num-steps", "1000"],
        2,
        "not finite, positive",
    ),
    (
        ["baseline", "ddpm-linear", "--num-steps", "3", "--num-timesteps", "1"],
        2,
        "--num-timesteps: m",
    ),
    (["baseline", "edm", "--num-steps", "3", "--num-timesteps", "10"], 2, "--num-timesteps does n"),
    (
        ["baseline", "ddpm-linear", "--num-steps", "3", "--beta-start", "2"],
        2,
        "argument --beta-start:",
    ),
    (["baseline", "ddpm-linear", "--num-steps", "3", "--beta-end", "0"], 2, "argument --beta-end:"),
    # ---- train (refused before any training) -----------------------------------------
    ([*TRAIN, "--dataset", "mnist"], 2, "argument --dataset: invalid choice: 'mnist'"),
    (["train", "--out", "{file}"], 2, "--out '{file}' exists and is not a directory"),
    ([*TRAIN, "--steps", "0"], 2, "argument --steps: must be an integer from 1 to 10000000"),
    ([*TRAIN, "--batch-size", "0"], 2, "argument --batch-size: must be an integer from 1"),
    ([*TRAIN, "--lr", "-1"], 2, "argument --lr: must be a number > 0, got '-1'"),
    ([*TRAIN, "--devices", "0"], 2, "argument --devices: must be an integer from 1 to 4096"),
    ([*TRAIN, "--devices", "64"], 2, "--devices 64: this machine has 1 local device(s)"),
    ([*TRAIN, "--noise", "gauss"], 2, "--noise must be one of"),
    ([*TRAIN, "--noise", "schedule:nope"], 2, "--noise schedule:FAMILY needs one of"),
    ([*TRAIN, "--weighting", "heavy"], 2, "argument --weighting: invalid choice: 'heavy'"),
    ([*TRAIN, "--ema", "1"], 2, "argument --ema: must be a number >= 0 and < 1, got '1'"),
    ([*TRAIN, "--seed", "-1"], 2, "argument --seed: must be an integer from 0 to 4294967295"),
    ([*TRAIN, "--data-seed", "x"], 2, "argument --data-seed: must be an integer from 0"),
    ([*TRAIN, "--num-train", "1"], 2, "argument --num-train: must be an integer from 2"),
    ([*TRAIN, "--dataset", "digits", "--num-train", "100"], 2, "--num-train applies to generat"),
    ([*TRAIN, "--dataset", "digits", "--data-seed", "1"], 2, "--data-seed applies to generated"),
    ([*TRAIN, "--channels", "0"], 2, "argument --channels: must be 1 to 8 comma-separated"),
    ([*TRAIN, "--channels", "16,32"], 2, "--channels applies to the U-Net of image data sets"),
    ([*TRAIN, "--num-blocks", "0"], 2, "argument --num-blocks: must be an integer from 1"),
    ([*TRAIN, "--num-blocks", "2"], 2, "--num-blocks applies to the U-Net of image data sets"),
    ([*TRAIN, "--width", "0"], 2, "argument --width: must be an integer from 1 to 65536"),
    ([*TRAIN, "--dataset", "digits", "--width", "16"], 2, "--width applies to the MLP of vec"),
    ([*TRAIN, "--depth", "0"], 2, "argument --depth: must be an integer from 1 to 64"),
    ([*TRAIN, "--dataset", "digits", "--depth", "2"], 2, "--depth applies to the MLP of vector"),
    ([*TRAIN, "--checkpoint-every", "0"], 2, "argument --checkpoint-every: must be an integer"),
    ([*TRAIN, "--log-every", "0"], 2, "argument --log-every: must be an integer from 1"),
    ([*TRAIN, "--num-samples", "0"], 2, "argument --num-samples: must be an integer from 1"),
    ([*TRAIN, "--sample-nfe", "0", "--num-samples", "9"], 2, "--num-samples applies to --samp"),
    ([*TRAIN, "--sample-nfe", "-1"], 2, "argument --sample-nfe: must be an integer from 0"),
    ([*TRAIN, "--learn-noise", "ddpm"], 2, "argument --learn-noise: invalid choice: 'ddpm'"),
    ([*TRAIN, "--noise-bins", "8"], 2, "--noise-bins applies to --learn-noise adaptive only"),
    ([*TRAIN, "--learn-noise", "adaptive", "--noise-bins", "1"], 2, "argument --noise-bins:"),
    ([*TRAIN, "--learn-noise", "adaptive", "--noise-knots", "8"], 2, "--noise-knots applies"),
    ([*TRAIN, "--learn-noise", "vdm", "--noise-knots", "1"], 2, "argument --noise-knots: must"),
    ([*TRAIN, "--learn-noise", "adaptive", "--noise-lr", "0.1"], 2, "--noise-lr applies to"),
    ([*TRAIN, "--learn-noise", "vdm", "--noise-lr", "0"], 2, "argument --noise-lr: must be"),
    ([*TRAIN, "--learn-noise", "vdm", "--noise-features", "8"], 2, "--noise-features applies"),
    ([*TRAIN, "--learn-noise", "uncertainty", "--noise-features", "0"], 2, "--noise-features:"),
    ([*TRAIN, "--learn-noise", "adaptive", "--noise-floor", "0"], 2, "argument --noise-floor"),
    ([*TRAIN, "--learn-noise", "adaptive", "--noise-decay", "1"], 2, "argument --noise-decay"),
    ([*TRAIN, "--online-schedule", "magic"], 2, "argument --online-schedule: invalid choice"),
    ([*TRAIN, "--online-schedule", "corrector", "--online-points", "2"], 2, "--online-points:"),
    ([*TRAIN, "--online-points", "8"], 2, "--online-points applies to --online-schedule only"),
    ([*TRAIN, "--online-gamma", "0"], 2, "argument --online-gamma: must be a number > 0"),
    ([*TRAIN, "--online-gamma", "0.5"], 2, "--online-gamma applies to --online-schedule only"),
    ([*TRAIN, "--online-samples", "0"], 2, "argument --online-samples: must be an integer from"),
    ([*TRAIN, "--online-samples", "9"], 2, "--online-samples applies to --online-schedule only"),
    # ---- evaluate --------------------------------------------------------------------
    (["evaluate", "--model", "{tmp}/nowhere"], 2, "--model '{tmp}/nowhere' is not a saved net"),
    (["evaluate", "--samples", "{tmp}/missing.npy", "--dataset", "ring"], 2, "cannot read --s"),
    (["evaluate", "--samples", "{empty_npy}", "--dataset", "ring"], 2, "it is empty (0 bytes)"),
    (["evaluate", "--samples", "{text_npy}", "--dataset", "ring"], 2, "it is not a NumPy .npy"),
    (["evaluate", "--samples", "{good_npy}"], 2, "--dataset is needed with --samples"),
    (["evaluate", "--samples", "{nan_npy}", "--dataset", "ring"], 2, "must hold finite real n"),
    (["evaluate", "--samples", "{good_npy}", "--dataset", "digits"], 2, "holds samples of shape"),
    ([*EV, "--dataset", "nope"], 2, "argument --dataset: invalid choice: 'nope'"),
    ([*EV, "--seed", "-1"], 2, "argument --seed: must be an integer from 0 to 4294967295"),
    ([*EV, "--data-seed", "-1"], 2, "argument --data-seed: must be an integer from 0"),
    ([*EV, "--num-samples", "0"], 2, "argument --num-samples: must be an integer from 1"),
    ([*EV, "--num-samples", "10"], 2, "--num-samples applies to --model only, not --samples"),
    ([*EV, "--nfe", "0"], 2, "argument --nfe: must be an integer from 1 to 10000"),
    ([*EV, "--nfe", "5"], 2, "--nfe applies to --model only, not --samples"),
    ([*EV, "--sampler", "magic"], 2, "argument --sampler: invalid choice: 'magic'"),
    ([*EV, "--solver", "magic"], 2, "argument --solver: invalid choice: 'magic'"),
    ([*EV, "--sampler", "euler"], 2, "warning: --sampler is deprecated: write --solver"),
    ([*EV, "--sampler", "euler", "--solver", "dpmpp-2m"], 2, "--solver: not allowed with argu"),
    ([*EV, "--num-steps", "0"], 2, "argument --num-steps: must be an integer from 1 to 10000"),
    ([*EV, "--num-steps", "5"], 2, "--num-steps applies to --model only, not --samples"),
    ([*EV, "--schedule", "cosine"], 2, "--schedule applies to --model only, not --samples"),
    ([*EV, "--card", "{file}"], 2, "--card applies to --model only, not --samples"),
    ([*EV, "--seeds", "3"], 2, "--seeds applies to --model only, not --samples"),
    ([*EV, "--seeds", "0"], 2, "argument --seeds: must be an integer from 1 to 100"),
    ([*EV, "--out", "{tmp}"], 2, "--out '{tmp}' is a directory; give a file path"),
    ([*EV, "--png", "{tmp}/nodir/s.png"], 2, "its folder '{tmp}/nodir' does not exist"),
    # ---- analyze ---------------------------------------------------------------------
    ([*AN, "--dataset", "nope"], 2, "argument --dataset: invalid choice: 'nope'"),
    ([*AN, "--schedule", "nope"], 2, "argument --schedule: invalid choice: 'nope'"),
    ([*AN, "--rho", "0"], 2, "argument --rho: must be a number > 0"),
    ([*AN, "--schedule", "song", "--rho", "5"], 2, "--rho applies to --schedule edm, not song"),
    ([*AN, "--card", "{tmp}/nope.json"], 2, "schedule card '{tmp}/nope.json' does not exist"),
    # cards with NaN or null noise levels used to load
    ([*AN, "--card", "{nan_card}"], 2, "holds NaN, which is not a finite number"),
    ([*AN, "--card", "{null_card}"], 2, "must be a list of numbers, got None"),
    ([*AN, "--card", "{rising_card}"], 2, "grid 'noise_levels' must be strictly decreasing"),
    ([*AN, "--card", "{v99_card}"], 2, "has card_version=99; this schedopt"),
    ([*AN, "--card", "{edited_card}"], 2, "its grid does not match its schedule"),
    ([*AN, "--card", "{good_card}", "--rho", "5"], 2, "--rho does not apply with --card"),
    ([*AN, "--card", "{good_card}", "--sigma-max", "9"], 2, "--sigma-max does not apply with"),
    ([*AN, "--denoiser", "{tmp}/nowhere"], 2, "--denoiser '{tmp}/nowhere' is not a saved"),
    ([*AN, "--sigma-min", "-1"], 2, "argument --sigma-min: -1.0 is not a positive finite"),
    ([*AN, "--sigma-max", "1e30"], 2, "argument --sigma-max: 1e+30 is outside the noise"),
    ([*AN, "--sigma-min", "10", "--sigma-max", "1"], 2, "--sigma-min (10) must be below"),
    ([*AN, "--sampler", "magic"], 2, "argument --sampler: invalid choice: 'magic'"),
    ([*AN, "--solver", "magic"], 2, "argument --solver: invalid choice: 'magic'"),
    ([*AN, "--sampler", "euler", "--profile", "edm"], 2, "warning: --sampler is deprecated"),
    (["analyze", "--num-steps", "0"], 2, "argument --num-steps: must be an integer from 1"),
    ([*AN, "--score-error", "-1"], 2, "argument --score-error: must be a number >= 0"),
    ([*AN, "--score-error", "1e7"], 2, "argument --score-error: must be a number >= 0 and <="),
    ([*AN, "--profile", "magic"], 2, "argument --profile: invalid choice: 'magic'"),
    ([*AN, "--profile", "edm"], 2, "--profile applies with --score-error > 0 only"),
    (["analyze", "--num-samples", "1"], 2, "argument --num-samples: must be an integer from 2"),
    ([*AN, "--reference-steps", "0"], 2, "argument --reference-steps: must be an integer"),
    ([*AN, "--seed", "-1"], 2, "argument --seed: must be an integer from 0 to 4294967295"),
    # ---- bench (--repeats 0 used to become 7) ----------------------------------------
    (["bench", "--repeats", "0"], 2, "argument --repeats: must be an integer from 1 to 1000"),
    (["bench", "--iterations", "0"], 2, "argument --iterations: must be an integer from 1"),
    (["bench", "--kl-dim", "0"], 2, "argument --kl-dim: must be an integer from 1 to 10000000"),
    (["bench", "--sizes", "0"], 2, "--sizes must be integers from 1 to 10000000, got '0'"),
    (["bench", "--sizes", "1,x"], 2, "--sizes must be comma-separated integers, got '1,x'"),
    (["bench", "--steps", "100000"], 2, "--steps must be integers from 1 to 10000"),
    (["bench", "--sections", "magic"], 2, "--sections must be a subset of"),
    (["bench", "--output", "{tmp}"], 2, "--output '{tmp}' is a directory; give a file path"),
]


@pytest.fixture
def paths(tmp_path):
    """The files the rows refer to, by placeholder name."""
    p = {"tmp": str(tmp_path), "run": str(tmp_path / "run")}
    (tmp_path / "a-file").write_text("not a directory")
    p["file"] = str(tmp_path / "a-file")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("1 2 3\n")
    np.save(tmp_path / "complex.npy", np.array([1 + 1j, 2.0]))
    np.save(tmp_path / "none.npy", np.zeros(0))
    np.save(tmp_path / "matrix.npy", np.eye(2))
    np.save(tmp_path / "good.npy", np.random.default_rng(0).normal(size=(64, 2)))
    np.save(tmp_path / "nan.npy", np.full((64, 2), np.nan))
    for name in ("empty", "text", "complex", "none", "matrix", "good", "nan"):
        p[f"{name}_npy"] = str(tmp_path / f"{name}.npy")
    card = make_card(EDM(), num_steps=3)
    p["good_card"] = str(save_card(tmp_path / "good.json", card))
    text = json.dumps(card)
    first = str(card["grid"]["noise_levels"][1])
    variants = {
        "nan_card": text.replace(first, "NaN", 1),
        "null_card": text.replace(first, "null", 1),
        "rising_card": text.replace(first, "90.0", 1),
        "v99_card": text.replace('"card_version": 1', '"card_version": 99'),
        "edited_card": text.replace(first, str(float(first) * 1.01), 1),
    }
    for name, content in variants.items():
        assert content != text
        (tmp_path / f"{name}.json").write_text(content)
        p[name] = str(tmp_path / f"{name}.json")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "log.jsonl").symlink_to(tmp_path / "outside" / "log.jsonl")  # dangling
    p["linked"] = str(linked)
    return p


def fill(text: str, paths: dict) -> str:
    for name, value in paths.items():
        text = text.replace("{" + name + "}", value)
    return text


def tree(root) -> dict:
    """Every path under ``root`` with its size (links: their target), to compare states."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            out[path] = os.readlink(path) if os.path.islink(path) else os.path.getsize(path)
    return out


def case_id(case) -> str:
    return " ".join(case[0])[:70]


@pytest.mark.parametrize("argv, code, fragment", CASES, ids=[case_id(c) for c in CASES])
def test_bad_input(argv, code, fragment, paths, tmp_path, capsys):
    before = tree(tmp_path)
    assert main([fill(a, paths) for a in argv]) == code
    err = capsys.readouterr().err
    assert fill(fragment, paths) in err
    assert "Traceback" not in err
    assert tree(tmp_path) == before  # nothing written, nothing left behind


def test_every_option_has_a_row():
    parser = build_parser()
    missing = []
    for command, sub in parser.subcommands.items():
        if command == "export":  # its options are tested with the exporters
            continue
        rows = [argv for argv, _, _ in CASES if argv[0] == command]
        for action in sub._actions:
            if action.nargs == 0 or action.dest == "help":  # flags: no bad value
                continue
            if not action.option_strings:  # a positional: any row of the command has it
                if not rows:
                    missing.append(f"{command} {action.dest}")
                continue
            if not any(set(action.option_strings) & set(argv) for argv in rows):
                missing.append(f"{command} {action.option_strings[0]}")
    assert not missing, f"options without a bad-input row: {missing}"


# ---- faults that need a prepared state -------------------------------------------------


def test_a_held_lock_is_a_clear_error_and_leaves_the_directory(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with DirectoryLock(run):  # another writer
        assert main(["optimize", *FAST, "--iterations", "2", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert f"--out directory '{run}' is in use by another schedopt process (pid" in err
    assert sorted(p.name for p in run.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_out_is_refused_before_any_work(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["optimize", "--out", str(folder / "run")]) == 2
    finally:
        folder.chmod(0o755)
    assert "is not writable: no write permission on" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_out_under_proc_is_one_line_naming_the_path(capsys):
    # root passes the permission check and fails creating it (exit 1); others are
    # refused before any work (exit 2); either way one line naming the path, no traceback
    code = main(["optimize", *FAST, "--out", "/proc/schedopt-test/run"])
    err = capsys.readouterr().err
    if os.geteuid() == 0:
        assert code == 1 and "'/proc/schedopt-test/run': cannot create or lock the --out" in err
    else:
        assert code == 2 and "is not writable: no write permission on '/proc'" in err
    assert len(err.strip().splitlines()) == 1 and not os.path.exists("/proc/schedopt-test")


def test_a_non_finite_start_value_is_refused_naming_the_inputs():
    # The rational Gaussian chain stays finite wherever the precision check lets a run in
    # (1e-4 at one step gives 3.2e7, as the closed form), so the refusal is tested directly.
    import types

    from schedopt.cli.optimize import check_start_value

    args = types.SimpleNamespace(
        family="monotone-cubic", num_steps=1, sigma_min=0.002, sigma_max=80.0
    )
    objective = types.SimpleNamespace(name="gaussian-kl")
    with pytest.raises(
        ValueError,
        match=r"gaussian-kl is nan at the schedule the run starts from "
        r"\(--family monotone-cubic, --num-steps 1",
    ):
        check_start_value(float("nan"), objective, args)
    assert check_start_value(2.5, objective, args) == 2.5

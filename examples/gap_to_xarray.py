# %% [markdown]
# # A gap file → xarray → the width rate β(t)
#
# Sweeps widths of the `relu-norm-2layer` preset against its exact m, N → ∞ limit on
# fresh samples (at a reduced size: set `STEPS`, `SEEDS`, `WIDTHS` for more), opens the
# result as a labelled xarray Dataset, and plots the fitted rate β of the RMS function
# gap over time with its interval (1/2 is the fluctuation rate). Notebook-style script
# (jupytext "percent" format). Needs the `[analysis]` extra (xarray).

# %%
import os

import matplotlib.pyplot as plt

import meanfield as mf

STEPS = int(os.environ.get("STEPS", "200"))
SEEDS = int(os.environ.get("SEEDS", "5"))
WIDTHS = [int(w) for w in os.environ.get("WIDTHS", "32,64,128,256").split(",")]
OUT = os.environ.get("OUT", "example-gap.h5")

res = mf.sweep(mf.presets.text("relu-norm-2layer"), widths=WIDTHS, seeds=SEEDS,
               reference="limit", limit_nodes=8, limit_norm_nodes=32, samples="fresh",
               every=max(1, STEPS // 4), path=OUT, overwrite=True,
               overrides=[f"solver.steps={STEPS}", "data.n_train=512", "data.n_test=512"])
print(res.summary())

# %%
ds = mf.open_gap(OUT).to_xarray()
print(ds)

# %%
fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
ax.plot(ds.t, ds.beta_function, "-o", label="RMS gap of single networks")
ax.fill_between(ds.t, ds.beta_lo_function, ds.beta_hi_function, alpha=0.3)
ax.axhline(0.5, color="gray", ls="--", label="1/2")
ax.set_xlabel("flow time t")
ax.set_ylabel("rate β (gap ∝ m^−β)")
ax.legend()
fig.savefig(os.path.splitext(OUT)[0] + ".png", dpi=90)

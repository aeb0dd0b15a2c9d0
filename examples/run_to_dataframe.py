# %% [markdown]
# # A run → a DataFrame → loss and stationarity curves
#
# Runs the `relu-norm-2layer` preset (at a reduced size: set `STEPS` for the full run),
# opens its run file as a pandas DataFrame, and plots the training and test losses and
# the velocity norm of the particles (the stationarity measure: it goes to 0 at a
# stationary point of the flow). Notebook-style script (jupytext "percent" format): run
# it with `python examples/run_to_dataframe.py`, or open it in Jupyter through jupytext.
# Needs the `[analysis]` extra (pandas).

# %%
import os

import matplotlib.pyplot as plt

import meanfield as mf

STEPS = int(os.environ.get("STEPS", "400"))     # the preset runs 4000
OUT = os.environ.get("OUT", "example-run.h5")

res = mf.run(mf.presets.text("relu-norm-2layer"), OUT, overwrite=True,
             overrides=[f"solver.steps={STEPS}", "data.n_train=512", "data.n_test=512",
                        "model.widths=[256]"])
print(res.status, res.state.step, res.state.loss)

# %%
with mf.open_run(OUT) as run:
    print(run)
    df = run.to_dataframe()        # indexed by step: t, loss, test_loss, wall_time, velocity_norm_1
print(df.tail())

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
ax1.semilogy(df["t"], df["loss"], label="training loss")
ax1.semilogy(df["t"], df["test_loss"], label="test loss")
ax1.set_xlabel("flow time t")
ax1.legend()
ax2.semilogy(df["t"], df["velocity_norm_1"])
ax2.set_xlabel("flow time t")
ax2.set_ylabel("velocity norm, block 1")
fig.suptitle(f"relu-norm-2layer, m = 256, {STEPS} Euler steps")
fig.savefig(os.path.splitext(OUT)[0] + ".png", dpi=90)

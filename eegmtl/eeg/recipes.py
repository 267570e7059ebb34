"""Training recipes of the deep baselines: one cited data entry per braindecode network.

:class:`~eegmtl.eeg.deep_baselines.BraindecodeClassifier` trains a network with the entry of
:data:`RECIPES` named by its ``model``; overrides (``lr=``, ``+set[...]``) change single values.

Recipes (:data:`RECIPES`; "paper" = the cited publication, "repo" = its official code). Our
export holds 4-s trials (1000 samples at 250 Hz, C3/Cz/C4, band-limited ≈6.7-25 Hz), so the
4.5-s windows of ATCNet / EEG-TCNet are not available; every network sees the 4 s.

============  =========  ======  ======  =====  ======  ======================================
model         optimiser  lr      epochs  batch  rate    source
============  =========  ======  ======  =====  ======  ======================================
ATCNet        Adam       1e-3    500     64     250 Hz  repo Altaheri/EEG-ATCNet
                                                        ``main_TrainValTest.py`` (paper: 1000)
EEGConformer  Adam       2e-4    2000    72     250 Hz  repo eeyhsong/EEG-Conformer
              β1=0.5                                    ``conformer_BCIIV2b.py``; S&R ×1
EEGTCNet      Adam       1e-3    750     64     250 Hz  paper Ingolfsson et al. 2020
TCFormer      Adam       9e-4    500     48     250 Hz  repo Altaheri/TCFormer tcformer.yaml
              wd 1e-3                                   (2b: 500 epochs, S&R 8 segments), as
                                                        quoted by a third-party setup guide
CTNet         Adam       1e-3    1000    72     250 Hz  repo snailpt/CTNet
              β1=0.5                                    ``main_subject_specific.py``; S&R ×3
IFNet         AdamW      2^-12   1000    32     250 Hz  repo Jiaheng-Wang/IFNet ``config.py``
              wd 1e-2                                   (no repeated-trial augmentation,
                                                        3-s windows or retraining stage)
FBCNet        Adam       1e-3    1500    16     250 Hz  paper Mane et al. 2021 (stage 1)
EEGNet        AdamW      1e-3    100     32     250 Hz  the EEGNet row of
                                                        :func:`eegmtl.eeg.baselines.make_eegnet`
ShallowFBCSP  AdamW      6.25e-4 100     32     250 Hz  the ShallowFBCSPNet row
============  =========  ======  ======  =====  ======  ======================================

The EEGNet / ShallowFBCSPNet recipes repeat the settings of the project's older rows
(:mod:`eegmtl.eeg.baselines`, early-stopped on an internal 20 % split) so that the same networks
can be early-stopped on the evaluation's validation fold and augmented like the others.

Deviations common to all: the learning-rate schedules of the originals (ATCNet's
ReduceLROnPlateau, TCFormer's cosine warm-up) are not applied; the checkpoint is the best
``valid_loss`` epoch on *our* validation fold with early stopping (``patience``), never the
test set (EEG-Conformer's public code reports the best *test* epoch; CTNet's keeps the lowest
loss on a 30 % validation split of the training trials). Deviations of single entries from
their cited code, found by reading that code after the records were made, are in each entry's
``deviations`` (documentation, not hashed: e.g. EEG-Conformer's 2b script uses batch 100 and a
10-layer encoder, TCFormer's config Adam β1 0.5, ATCNet's repo a per-channel z-score); they are
kept so that the committed records stay reproducible, and ``+set[...]`` runs the cited values
where they are scalar top-level settings (e.g. ``EEGConformer+set[batch_size=100]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RECIPES", "Recipe", "get_recipe", "recipe_table"]


@dataclass(frozen=True)
class Recipe:
    """A network's training recipe as published (a data entry, cited in ``source``)."""

    model: str
    optimizer: str
    lr: float
    max_epochs: int
    batch_size: int
    sfreq: float
    window_s: float
    source: str
    weight_decay: float = 0.0
    betas: tuple[float, float] | None = None
    #: input z-score (:func:`eegmtl.eeg.preprocessing.standardize_mode`: True = one mean / SD)
    standardize: bool | str = False
    augmentation: Any = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    #: early-stopping patience on the validation loss; ``None``: the harness's common value
    #: (``eegmtl.evaluation.catalog.DEEP_PATIENCE``)
    patience: int | None = None
    #: where this entry differs from the cited code (documentation only: not part of the
    #: config, so the records made with the entry keep their config hash)
    deviations: str = ""


_SR = "segment_recombine"
RECIPES: dict[str, Recipe] = {r.model: r for r in [
    Recipe("ATCNet", "adam", 1e-3, 500, 64, 250.0, 4.5,
           "Altaheri et al. 2023, IEEE TII 19(2); repo Altaheri/EEG-ATCNet main_TrainValTest.py "
           "(Adam 1e-3, batch 64, 500 epochs, best val_loss)",
           deviations="the repo standardises every channel and sample with the training "
                      "trials' mean and SD (preprocess.standardize_data: a StandardScaler per "
                      "channel on trials x samples), not done here (ATCNet+set[standardize="
                      "channel_time] does it); its ReduceLROnPlateau (factor 0.9, patience 20) "
                      "is not applied; its 4.5-s window is not available"),
    Recipe("EEGConformer", "adam", 2e-4, 2000, 72, 250.0, 4.0,
           "Song et al. 2023, IEEE TNSRE 31; repo eeyhsong/EEG-Conformer conformer_BCIIV2b.py "
           "(Adam 2e-4, betas (0.5, 0.999), z-score, S&R batch appended)",
           betas=(0.5, 0.999), standardize=True,
           augmentation={"transforms": [_SR], "n_augmentation": 1},
           # the common 30 epochs are 6 % of the 500-epoch schedules of ATCNet and TCFormer
           # but 1.5 % of this 2000-epoch one at a 5x smaller learning rate: with 30, subject
           # 1 of SD fold 1 stopped at epoch 31 on its epoch-1 weights (validation loss
           # lowest after the first epoch); 120 is 6 % of 2000
           patience=120,
           deviations="the 2b script uses batch 100 and a 10-layer, 5-head encoder (emb 40); "
                      "this entry has batch 72 and braindecode's 6 layers / 10 heads (the 2a "
                      "script's values; EEGConformer+set[batch_size=100,model.num_layers=10,"
                      "model.num_heads=5] runs the 2b script's); S&R segments come from the "
                      "batch, not the whole "
                      "training set; the script reports the best test epoch, here the best "
                      "validation-loss epoch"),
    Recipe("EEGTCNet", "adam", 1e-3, 750, 64, 250.0, 4.5,
           "Ingolfsson et al. 2020, IEEE SMC (arXiv 2006.00622): Adam 1e-3, batch 64, 750 "
           "epochs, F1=8, D=2, KE=32, FT=12, KT=4, dropout 0.2 / 0.3",
           standardize=True,
           model_kwargs={"kern_length": 32, "drop_prob_eeg": 0.2, "drop_prob_tcn": 0.3},
           deviations="the repo standardises every channel and sample (sample_train.py: a "
                      "StandardScaler per channel on trials x samples), here one scalar "
                      "(EEGTCNet+set[standardize=channel_time] does as the repo); it keeps the "
                      "last epoch's weights without a validation set"),
    Recipe("TCFormer", "adam", 9e-4, 500, 48, 250.0, 4.0,
           "Altaheri et al. 2025, Sci Rep (s41598-025-16219-7); repo Altaheri/TCFormer "
           "configs/tcformer.yaml as quoted by a third-party setup guide (Adam 9e-4, weight "
           "decay 1e-3, batch 48, cosine schedule with 20 warm-up epochs; max_epochs_2b 500) and "
           "the paper (S&R with 8 segments on 2b); the yaml itself was not read",
           weight_decay=1e-3, standardize=True,
           augmentation={"transforms": [_SR], "n_augmentation": 1},
           deviations="forks of the repo's tcformer.yaml set Adam beta1 0.5 (here 0.9), a "
                      "5-layer encoder (trans_depth: 5; here braindecode's 2, the paper's "
                      "Table 1 value; +set[model.n_transformer_layers=5]), weight decay 1e-3 "
                      "or 5e-3, a per-channel z-score (here one scalar), a cosine schedule "
                      "with 20 warm-up epochs (not applied) and 125 epochs for "
                      "leave-one-subject-out (here 500)"),
    Recipe("CTNet", "adam", 1e-3, 1000, 72, 250.0, 4.0,
           "Zhao et al. 2024, Sci Rep 14:20237; repo snailpt/CTNet main_subject_specific.py "
           "(Adam 1e-3, betas (0.5, 0.999), batch 72, 1000 epochs, z-score, S&R x3, F1=8, "
           "emb 16, 2 heads, depth 6, dropout 0.5 SD / 0.25 LOSO)",
           betas=(0.5, 0.999), standardize=True,
           augmentation={"transforms": [_SR], "n_augmentation": 3},
           model_kwargs={"n_filters_time": 8, "embed_dim": 16, "num_heads": 2,
                         "num_layers": 6, "cnn_drop_prob": 0.5},
           deviations="the repo's subject-independent runs use dropout 0.25; this entry keeps "
                      "0.5 in both protocols"),
    Recipe("IFNet", "adamw", 2.0 ** -12, 1000, 32, 250.0, 4.0,
           "Wang et al. 2023, IEEE TNSRE 31; repo Jiaheng-Wang/IFNet config.py / "
           "within_subject.py (AdamW, lr 2^-12, weight decay 1e-2, batch 32, 1000 epochs, no "
           "schedule); its repeated-trial augmentation (random crop, CutMix, random erasing), "
           "3-s windows and train+validation retraining stage are not reproduced",
           weight_decay=1e-2, standardize=True,
           deviations="the repo scales the input by a fixed 1/5, here a z-score of the "
                      "training trials; repeated-trial augmentation, 3-s windows and the "
                      "retraining stage are not reproduced"),
    Recipe("EEGNet", "adamw", 1e-3, 100, 32, 250.0, 4.0,
           "Lawhern et al. 2018, J Neural Eng 15(5); settings of the project's EEGNet row "
           "(make_eegnet: AdamW 1e-3 no decay, batch 32, 100 epochs, F1=8, D=2, kernel 0.5 s)",
           model_kwargs={"F1": 8, "D": 2, "kernel_length": 125, "drop_prob": 0.5}),
    Recipe("ShallowFBCSPNet", "adamw", 6.25e-4, 100, 32, 250.0, 4.0,
           "Schirrmeister et al. 2017, Hum Brain Mapp 38(11); settings of the project's "
           "ShallowFBCSPNet row (make_shallow_fbcsp_net: AdamW 6.25e-4, batch 32, 100 epochs)"),
    Recipe("FBCNet", "adam", 1e-3, 1500, 16, 250.0, 4.0,
           "Mane et al. 2021, arXiv 2104.01233: Adam 1e-3, batch 16, stage 1 up to 1500 "
           "epochs with early stopping on validation (stage 2 not run)",
           deviations="the repo stops after 200 epochs without a better validation accuracy "
                      "and restores the best-accuracy weights (here patience 30 on the "
                      "validation loss), with a summed NLL loss; stage 2 is not run"),
]}


def recipe_table() -> list[dict[str, Any]]:
    """The recipes as records (for reports): one dict per model."""
    return [asdict(r) for r in RECIPES.values()]


def get_recipe(model: str) -> Recipe:
    """The recipe of ``model`` (a key of :data:`RECIPES`); ``ValueError`` names the known ones."""
    if model not in RECIPES:
        raise ValueError(f"unknown deep baseline {model!r}; available: {sorted(RECIPES)}.")
    return RECIPES[model]

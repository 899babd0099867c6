"""Running scores of one method over a split, streamed batch by batch (numpy state).

`MethodScores` holds, for one method of `hsr_keras.evaluation.engine.evaluate_methods`, the metric
card (`hsr_keras.scoring.metrics.MetricAccumulator`) over the split, per month and per latitude band,
its ensemble scores when it is sampled several times, and its power spectrum. Memory does not
grow with the number of days.
"""

import numpy as np

from hsr_keras.scoring.ensemble_scores import (
    crps_ensemble,
    ensemble_spread,
    rank_flatness,
    rank_histogram,
    spread_skill_parts,
    spread_skill_ratio,
)
from hsr_keras.scoring.spectra import radial_power_spectrum

# `hsr_keras.scoring.metrics` (Keras) is imported where it is used, so that the commands' argument
# checks run without starting TensorFlow.


class EnsembleAccumulator:
    """Running ensemble scores over days (numpy): fair CRPS, spread, spread-skill, rank histogram, member lattice.

    `scale`: the lattice's LR stride (`engine.lattice_scale`), None for no member lattice.
    """

    def __init__(self, scale=None):
        self.scale = scale
        self.crps = 0.0
        self.spread = 0.0
        self.days = 0
        self.variance = 0.0
        self.squared_error = 0.0
        self.histogram = None
        self.members = 0
        self.lattice = 0.0
        self.lattice_days = 0

    def update(self, members, true):
        members = np.asarray(members)
        self.members = int(members.shape[0])
        self.crps += float(np.sum(crps_ensemble(members, true)))
        self.spread += float(np.sum(ensemble_spread(members, true)))
        self.days += int(np.shape(true)[0])
        variance, squared_error, _ = spread_skill_parts(members, true)
        self.variance += variance
        self.squared_error += squared_error
        counts = rank_histogram(members, true)
        self.histogram = counts if self.histogram is None else self.histogram + counts
        if self.scale is not None:
            from hsr_keras.scoring.metrics import lattice

            # Each member's lattice per day; member-days without roughness (NaN) are left out.
            values = np.concatenate([np.asarray(lattice(member, self.scale), dtype=np.float64) for member in members])
            finite = np.isfinite(values)
            self.lattice += float(values[finite].sum())
            self.lattice_days += int(finite.sum())

    def result(self):
        histogram = self.histogram / self.histogram.sum()
        scores = {
            "crps": self.crps / self.days,
            "spread": self.spread / self.days,
            "spread_skill": spread_skill_ratio(self.variance, self.squared_error, self.members),
            "rank_flatness": rank_flatness(self.histogram),
            "rank_histogram": histogram.tolist(),
            "members": self.members,
        }
        if self.scale is not None:
            scores["member_lattice"] = self.lattice / self.lattice_days if self.lattice_days else float("nan")
        return scores


class SpectrumAccumulator:
    """Sum over frames of the radially averaged power spectrum; `result()` is the frame mean."""

    def __init__(self):
        self.wavenumbers = None
        self.power = None
        self.frames = 0

    def update(self, fields):
        fields = np.asarray(fields)
        frames = int(np.prod(fields.shape[:-2]))
        k, power = radial_power_spectrum(fields)
        if self.power is None:
            self.wavenumbers, self.power = k, np.zeros_like(power)
        self.power += power * frames
        self.frames += frames

    def result(self):
        return self.power / self.frames


class PeriodScores:
    """The metric card of one method over some days, plus CRPS and spread when it is an ensemble.

    `scale`: the lattice's LR stride (`lattice_scale`), None for no lattice.
    """

    def __init__(self, climatology, ensemble=False, scale=None):
        from hsr_keras.scoring.metrics import MetricAccumulator

        self.card = MetricAccumulator(climatology=climatology, scale=scale)
        self.ensemble = EnsembleAccumulator(scale) if ensemble else None

    def update(self, pred, true, members=None, climatology=None):
        self.card.update(pred, true, climatology)
        if self.ensemble is not None:
            self.ensemble.update(members, true)

    def result(self):
        scores = self.card.result()
        if self.ensemble is not None:
            scores.update(self.ensemble.result())
        return scores


class MethodScores:
    """Everything accumulated for one method: scores over the split, per month and per latitude band, and spectra.

    An ensemble (`ensemble=True`) adds the ensemble scores (`EnsembleAccumulator`) and the mean
    spectrum of its members (`member_spectrum`, every member's frames): the members' texture,
    which the ensemble mean smooths away.
    """

    def __init__(self, climatology, ensemble=False, scale=None):
        self.climatology = climatology
        self.ensemble = ensemble
        self.scale = scale
        self.overall = PeriodScores(climatology, ensemble, scale)
        self.monthly = {}
        self.bands = {}
        self.spectrum = SpectrumAccumulator()
        self.member_spectrum = SpectrumAccumulator() if ensemble else None

    def update(self, pred, true, months, members=None, bands=None, climatology=None):
        """One batch; `months` (and `bands`) map 'YYYY-MM' (a latitude band) to the rows in it.

        `climatology`: one per row (`[B, T, H, W]`) where it depends on the patch, else None.
        """
        self.overall.update(pred, true, members, climatology)
        self.spectrum.update(pred)
        if members is not None:
            self.member_spectrum.update(members)
        for groups, scores in ((months, self.monthly), (bands or {}, self.bands)):
            for key, rows in groups.items():
                period = scores.setdefault(key, PeriodScores(self.climatology, self.ensemble, self.scale))
                period.update(
                    pred[rows],
                    true[rows],
                    None if members is None else members[:, rows],
                    None if climatology is None else climatology[rows],
                )

    def result(self):
        return self.overall.result()

    def monthly_result(self):
        return {month: self.monthly[month].result() for month in sorted(self.monthly)}

    def band_result(self):
        return {band: self.bands[band].result() for band in self.bands}

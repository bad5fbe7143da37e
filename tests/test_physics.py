"""epi_ml.physics against published numbers (Vurgaftman 2001; DESIGN.md; research/domain.md)."""

from __future__ import annotations

import numpy as np
import pytest

from epi_ml import physics as ph


def test_gaas_monolayer_and_rate_conversion() -> None:
    assert pytest.approx(0.28266, abs=1e-5) == ph.GAAS_MONOLAYER_NM
    assert float(ph.ml_per_s_to_um_per_h(1.0)) == pytest.approx(1.018, abs=0.0005)
    assert float(ph.um_per_h_to_ml_per_s(1.018)) == pytest.approx(1.0, abs=0.001)
    # 6.26e14 group-III atoms per cm² in one GaAs (001) monolayer
    assert ph.group_iii_sites_per_cm2() == pytest.approx(6.26e14, rel=0.002)


def test_strained_lattice_of_alas_on_gaas() -> None:
    # tetragonal distortion puts a_perp(AlAs on GaAs) near 0.5668-0.5669 nm (qncmbe uses 0.566918)
    assert float(ph.perpendicular_lattice_nm("AlAs")) == pytest.approx(0.56685, abs=1e-4)
    # In0.2Ga0.8As on GaAs: compressive strain makes the monolayer thicker than relaxed
    relaxed = float(ph.monolayer_thickness_nm("InGaAs", 0.2, strained_on=None))
    strained = float(ph.monolayer_thickness_nm("InGaAs", 0.2))
    assert strained > relaxed > ph.GAAS_MONOLAYER_NM


def test_band_gaps_and_pl_at_room_temperature() -> None:
    assert float(ph.band_gap_ev("GaAs", 0.0, 300.0)) == pytest.approx(1.4225, abs=5e-4)
    assert float(ph.pl_peak_nm("GaAs", 0.0, 300.0)) == pytest.approx(871.6, abs=0.2)
    assert float(ph.band_gap_ev("AlGaAs", 0.3, 300.0)) == pytest.approx(1.841, abs=1e-3)
    gaps = ph.band_gap_ev("AlGaAs", np.array([0.1, 0.2, 0.3]), 300.0)
    np.testing.assert_allclose(gaps, [1.580, 1.717, 1.841], atol=1e-3)
    np.testing.assert_allclose(
        ph.pl_peak_nm("AlGaAs", np.array([0.1, 0.2, 0.3])), [785, 722, 674], atol=1
    )
    np.testing.assert_allclose(
        ph.band_gap_ev("InGaAs", np.array([0.1, 0.2, 0.53])), [1.273, 1.132, 0.737], atol=1e-3
    )
    # 0 K values are the Varshni Eg0
    assert float(ph.band_gap_ev("GaAs", 0.0, 0.0)) == pytest.approx(1.519)
    assert float(ph.band_gap_ev("InAs", 0.0, 0.0)) == pytest.approx(0.417)


def test_algaas_turns_indirect_near_x_045() -> None:
    assert bool(ph.is_direct_gap("AlGaAs", 0.40))
    assert not bool(ph.is_direct_gap("AlGaAs", 0.50))
    assert not bool(ph.is_direct_gap("AlAs"))


def test_composition_from_fluxes() -> None:
    assert float(ph.composition(0.3, 0.7)) == pytest.approx(0.3)
    assert float(ph.composition(0.0, 0.0)) == 0.0


def test_indium_is_kept_below_545c_and_lost_above() -> None:
    kept = ph.indium_incorporation(np.array([480.0, 520.0, 545.0, 580.0, 620.0]))
    assert kept[0] > 0.995 and kept[1] > 0.99
    assert kept[2] == pytest.approx(1 - ph.INDIUM_LOSS_AT_ONSET)
    assert np.all(np.diff(kept) < 0)
    assert kept[4] < 0.5


def test_arrhenius_anchored_to_the_real_ga_calibration() -> None:
    a = ph.ln_prefactor_from_anchor(1.05e-7, 940.0, 2.65)
    # real Ga BEP: 4.4e-8 Torr at 900 °C to 1.6e-7 at 960 °C
    assert float(ph.arrhenius_bep(900.0, a, 2.65)) == pytest.approx(4.4e-8, rel=0.05)
    assert float(ph.arrhenius_bep(960.0, a, 2.65)) == pytest.approx(1.6e-7, rel=0.05)
    # about 2 %/°C near 930 °C
    slope = float(ph.arrhenius_bep(931.0, a, 2.65) / ph.arrhenius_bep(930.0, a, 2.65)) - 1
    assert slope == pytest.approx(0.021, abs=0.002)
    assert float(ph.arrhenius_temperature_c(1.05e-7, a, 2.65)) == pytest.approx(940.0)


def test_arrhenius_fit_recovers_its_parameters_and_reads_epic_coefficients() -> None:
    t = np.linspace(880, 1000, 8)
    a, energy = ph.ln_prefactor_from_anchor(1e-7, 940.0, 2.65), 2.65
    fit = ph.fit_arrhenius(t, ph.arrhenius_bep(t, a, energy))
    assert fit.activation_ev == pytest.approx(energy, rel=1e-9)
    assert fit.ln_prefactor == pytest.approx(a, rel=1e-9)
    assert fit.r2 == pytest.approx(1.0)
    # the real MBE8 Fitting.txt: Coeff=4.614E00,-2.313E04 gives a plausible Ga BEP at 900 °C
    real = ph.ArrheniusFit.from_epic(4.614, -2.313e4)
    assert 1e-7 < float(real.bep(900.0)) < 1e-6
    assert real.epic_coefficients == pytest.approx((4.614, -2.313e4))
    with pytest.raises(ValueError, match="two points"):
        ph.fit_arrhenius([900.0], [1e-7])


def test_unknown_material_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown material 'GaN'"):
        ph.lattice_constant_nm("GaN")

"""The signal chain: assembled from YAML, it lists the controls it needs, routes signals between components,
returns every part, respects masks, and refuses a malformed chain with a message naming the component."""
from __future__ import annotations

import pytest
import torch
import yaml

from modules.ddsp.chain import SignalChain, harmonic_plus_noise_chain

SR, HOP = 16000, 160

CHAIN_YAML = """
- {name: harmonic, kind: harmonic, args: {n_harmonics: 16},
   inputs: {amplitude: controls.amplitude, distribution: controls.harmonic_distribution, f0: f0}}
- {name: noise, kind: filtered_noise, args: {n_bands: 33}, inputs: {magnitudes: controls.noise_magnitudes}}
- {name: mix, kind: add, inputs: {audio: [harmonic, noise]}}
- {name: reverb, kind: reverb, args: {ir_length: 480}, inputs: {audio: mix}}
"""


def random_controls(chain: SignalChain, frames: int, batch: int = 2) -> dict[str, torch.Tensor]:
    return {name: torch.randn(batch, channels, frames) for name, channels in chain.control_channels().items()}


def test_chain_from_yaml_routes_every_signal():
    torch.manual_seed(0)
    chain = SignalChain(yaml.safe_load(CHAIN_YAML), SR, HOP).eval()
    assert chain.control_channels() == {"amplitude": 1, "harmonic_distribution": 16, "noise_magnitudes": 33}
    controls, f0 = random_controls(chain, 20), torch.full((2, 20), 220.0)
    out = chain(controls, f0)
    assert set(out.signals) == {"harmonic", "noise", "mix", "reverb"}
    assert all(signal.shape == (2, 1, 20 * HOP) for signal in out.signals.values())
    torch.testing.assert_close(out.signals["mix"], out.signals["harmonic"] + out.signals["noise"])
    torch.testing.assert_close(out.audio, chain.processors["reverb"](out.signals["mix"]))
    harmonic = chain.processors["harmonic"](controls["amplitude"], controls["harmonic_distribution"], f0)
    torch.testing.assert_close(out.signals["harmonic"], harmonic)


def test_the_yaml_chain_equals_visinger2s_chain():
    assert yaml.safe_load(CHAIN_YAML) == harmonic_plus_noise_chain(n_harmonics=16, n_bands=33, reverb_ir_length=480)
    assert [c["name"] for c in harmonic_plus_noise_chain(reverb_ir_length=0)] == ["harmonic", "noise", "mix"]


def test_padded_batch_equals_items_and_gradients_reach_controls_and_room():
    torch.manual_seed(0)
    chain = SignalChain(harmonic_plus_noise_chain(n_harmonics=8, n_bands=17, reverb_ir_length=320), SR, HOP).eval()
    lengths = [14, 6]
    controls = {name: value.requires_grad_() for name, value in random_controls(chain, 14).items()}
    f0 = torch.rand(2, 14) * 300 + 100
    f0[:, 4:6] = 0.0
    mask = (torch.arange(14)[None] < torch.tensor(lengths)[:, None]).float().unsqueeze(1)
    out = chain(controls, f0, mask)
    for row, length in enumerate(lengths):
        alone = chain({k: v[row : row + 1, :, :length] for k, v in controls.items()}, f0[row : row + 1, :length])
        torch.testing.assert_close(out.audio[row : row + 1, :, : length * HOP], alone.audio, rtol=0, atol=1e-5)
        assert torch.all(out.audio[row, :, length * HOP :] == 0)
    out.audio.pow(2).sum().backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in controls.values())
    assert chain.processors["reverb"].ir.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "components, message",
    [
        ([{"name": "a", "kind": "granular", "inputs": {}}], "unknown kind 'granular'"),
        ([{"name": "mix", "kind": "add", "inputs": {"audio": ["later"]}}, {"name": "later", "kind": "reverb", "inputs": {"audio": "mix"}}],
         "not an earlier component"),
        ([{"name": "n", "kind": "filtered_noise", "inputs": {"mags": "controls.m"}}], "must be exactly the ports"),
        ([{"name": "n", "kind": "filtered_noise", "inputs": {"magnitudes": "f0"}}], "frame-rate control"),
        ([{"name": "n", "kind": "filtered_noise", "args": {"hop_size": 80}, "inputs": {"magnitudes": "controls.m"}}], "come from the chain"),
        ([{"name": "n", "kind": "filtered_noise", "args": {"bands": 8}, "inputs": {"magnitudes": "controls.m"}}], "unknown args"),
        ([{"name": "n", "kind": "filtered_noise", "inputs": {"magnitudes": "controls.m"}}] * 2, "name is taken"),
        ([{"name": "n", "kind": "filtered_noise", "input": {"magnitudes": "controls.m"}}], "unknown keys"),
        ([{"name": "n", "kind": "filtered_noise", "args": {"n_bands": 9}, "inputs": {"magnitudes": "controls.m"}},
          {"name": "o", "kind": "filtered_noise", "args": {"n_bands": 5}, "inputs": {"magnitudes": "controls.m"}}], "used with 9 and 5 channels"),
    ],
)  # fmt: skip
def test_malformed_chains_are_refused_with_the_component_named(components, message):
    with pytest.raises(ValueError, match=message):
        SignalChain(components, SR, HOP)


def test_missing_controls_are_named():
    chain = SignalChain(harmonic_plus_noise_chain(n_harmonics=4, n_bands=9), SR, HOP)
    with pytest.raises(ValueError, match="noise_magnitudes"):
        chain({"amplitude": torch.zeros(1, 1, 3), "harmonic_distribution": torch.zeros(1, 4, 3)}, torch.zeros(1, 3))

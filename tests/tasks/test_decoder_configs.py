"""The decoder configs: each VISinger YAML names the decoder it documents, and a decoder's choice and
fields round-trip through the saved generator arguments (what checkpoints and packs store)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from config.errors import UserInputError
from config.loader import load_config
from model_io.description import SINGER, ModelSpec, build_with_state
from modules.visinger import VISingerGenerator
from tasks.visinger_task import generator_config_from
from tests.modules.factories import make_generator_args, make_random_batch, score_inputs

MODELS = Path(__file__).resolve().parents[2] / "config" / "models"


@pytest.mark.parametrize(
    "name, decoder",
    [("visinger.yaml", "hifigan"), ("visinger_44k.yaml", "hifigan"), ("visinger_demo.yaml", "nsf_hifigan"),
     ("visinger2.yaml", "ddsp"), ("visinger2_demo.yaml", "ddsp"), ("visinger_fast.yaml", "istft"), ("visinger_fast_demo.yaml", "istft")],
)  # fmt: skip
def test_each_config_builds_its_decoder(name, decoder):
    config = generator_config_from(load_config(MODELS / name))
    assert config.decoder == decoder
    if name.endswith("_demo.yaml"):  # small enough to build here
        assert type(VISingerGenerator.from_config(config).decoder).__name__ == {
            "nsf_hifigan": "HiFiGANGenerator", "ddsp": "DDSPDecoder", "istft": "ISTFTDecoder"}[decoder]  # fmt: skip


def test_a_misspelt_decoder_is_one_clear_error():
    with pytest.raises(UserInputError, match="decoder must be one of hifigan, nsf_hifigan, ddsp, istft"):
        generator_config_from(load_config(MODELS / "visinger_demo.yaml", "model.decoder=vocos"))


@pytest.mark.parametrize("decoder", ("nsf_hifigan", "ddsp", "istft"))
def test_the_decoder_round_trips_through_the_saved_arguments(decoder, tmp_path):
    torch.manual_seed(0)
    generator = VISingerGenerator(**make_generator_args(decoder=decoder)).eval()
    # What a checkpoint or pack stores (model_io's self-description), through torch.save / load(weights_only=True).
    saved = tmp_path / "generator.pt"
    torch.save({"spec": ModelSpec.of(VISingerGenerator, generator.config, role=SINGER).to_dict(), "state": generator.state_dict()}, saved)
    packed = torch.load(saved, weights_only=True)
    rebuilt = build_with_state(ModelSpec.from_dict(packed["spec"], str(saved)), packed["state"], str(saved)).eval()
    assert rebuilt.config == generator.config and type(rebuilt.decoder) is type(generator.decoder)
    batch = make_random_batch(make_generator_args(), phones_per_item=(6,), seed=2)
    torch.manual_seed(1)
    expected = generator.infer(**score_inputs(batch), noise_scale=0.0).wav
    torch.manual_seed(1)
    torch.testing.assert_close(rebuilt.infer(**score_inputs(batch), noise_scale=0.0).wav, expected)

"""DDSP synthesiser parts (Engel et al. 2020), shared by VISinger's `ddsp` decoder and the DDSP singer.

All processors are `nn.Module`s with typed constructor arguments; frame-rate inputs are `[B, C, T]`
(F0 `[B, T]` in Hz, 0 = unvoiced), the frame mask is `[B, 1, T]`, and every waveform is
`[B, 1, T * hop_size]`, zero past the mask. A padded batch gives each item exactly what it gets
alone (eval mode: the noise is a fixed sequence, see `core.white_noise`).

- `modules.ddsp.harmonic`: `harmonic_synthesis(amplitudes [B, H, T], f0, sample_rate, hop_size, mask)`
  (pure function; float64 phase, Nyquist-silenced harmonics) and `HarmonicSynth(sample_rate, hop_size,
  n_harmonics, scale, amplitude_bias)`: DDSP's overall amplitude `[B, 1, T]` x normalised
  distribution `[B, H, T]`.
- `modules.ddsp.filtered_noise`: `FilteredNoise(sample_rate, hop_size, n_bands, window_size, scale,
  initial_bias)`: white noise through a per-frame FIR designed from `magnitudes [B, n_bands, T]`
  (the learnt spectral envelope), overlap-added; `frequency_impulse_response`.
- `modules.ddsp.reverb`: `LearntReverb(sample_rate, hop_size, ir_length, add_dry, initial_gain,
  initial_decay_s)`: one trainable impulse response, output cut to the input length.
- `modules.ddsp.chain`: `SignalChain(components, sample_rate, hop_size, output)` assembles processors
  from a YAML-like list `[{name, kind, inputs, args}]` (kinds: harmonic, filtered_noise, reverb,
  add); `control_channels()` says which `controls.<name>` `[B, C, T]` the driving network must
  predict; `forward(controls, f0, mask) -> ChainOutput(audio, signals)`.
  `harmonic_plus_noise_chain(n_harmonics, n_bands, reverb_ir_length)` is VISinger 2's chain.
- `modules.ddsp.core`: `frames_to_samples`, `hold_last_valid`, `sample_mask`, `exp_sigmoid`,
  `scale_control`, `fft_convolve` (causal), `white_noise`.

Example (a DDSP singer's synthesiser driven by a network's frame outputs):

    chain = SignalChain(harmonic_plus_noise_chain(n_harmonics=64, n_bands=65, reverb_ir_length=8000), 24000, 300)
    head = nn.Conv1d(hidden, sum(chain.control_channels().values()), 1)
    raw = head(features).split(list(chain.control_channels().values()), dim=1)
    out = chain(dict(zip(chain.control_channels(), raw)), f0, mask)   # out.audio [B, 1, T * 300]
"""

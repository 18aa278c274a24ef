"""The DeepSpeech2 port (App. B.1): ds2_large's layer shapes and parameter count from its
config, the checkpoint loader on a checkpoint written here in OpenSeq2Seq's variable names and
CuDNN canonical GRU layout (checked against a NumPy forward pass written from cuDNN's GRU
equations), and the preprocessing against a frame-by-frame re-implementation."""

import numpy as np
import pytest
import tensorflow as tf

from tts_gan import extractors
from tts_gan.extractors import deepspeech2 as ds2

SMALL = ds2.DS2Config(num_audio_features=16, conv_layers=((3, 5, 2, 2, 4), (3, 3, 1, 2, 3)),
                      num_rnn_layers=2, rnn_cell_dim=6, n_hidden=10)

# Names and shapes read from DeepSpeechDistances' checkpoint/collection-stripped-meta.meta
# (its Saver's tensor_names and the VariableV2 shape attributes).
META_GRAPH_SHAPES = {
    "ForwardPass/ds2_encoder/conv1/kernel": (11, 41, 1, 32),
    "ForwardPass/ds2_encoder/conv1/bn/moving_variance": (32,),
    "ForwardPass/ds2_encoder/conv2/kernel": (11, 21, 32, 32),
    "ForwardPass/ds2_encoder/conv2/bn/gamma": (32,),
    "ForwardPass/ds2_encoder/fully_connected/kernel": (1600, 1600),
    "ForwardPass/ds2_encoder/fully_connected/bias": (1600,),
}
META_GRAPH_GRU_NAME = ("ForwardPass/ds2_encoder/cudnn_gru/stack_bidirectional_rnn/cell_4/"
                       "bidirectional_rnn/bw/cudnn_compatible_gru_cell/candidate/"
                       "hidden_projection/bias")


# ------------------------------------------------------------------------------ ds2_large
def test_ds2_large_layer_shapes_and_parameter_count():
    cfg = ds2.DS2_LARGE
    assert (cfg.num_audio_features, cfg.conv_layers, cfg.num_rnn_layers, cfg.rnn_cell_dim,
            cfg.n_hidden) == (160, ((11, 41, 2, 2, 32), (11, 21, 1, 2, 32)), 5, 800, 1600)
    model = ds2.build_encoder(cfg)
    shapes = {n: tuple(model.get_layer(n).output.shape[2:]) for n in (
        "conv1", "conv2", "reshape", "bigru0", "bigru4", "fully_connected")}
    assert shapes == {"conv1": (80, 32), "conv2": (40, 32), "reshape": (1280,),
                      "bigru0": (1600,), "bigru4": (1600,), "fully_connected": (1600,)}
    # a 2-s clip: 199 frames padded to 200 → 100 output steps of 1600
    assert tuple(model.compute_output_shape((1, 200, 160))) == (1, 100, 1600)
    assert model(np.zeros((1, 16, 160), np.float32)).shape == (1, 8, 1600)
    # parameters from the config: convs (no bias), BN (γ, β, mean, var), 10 GRUs with
    # 3 gates × h × (input + h) weights and 2 × 3h biases (cuDNN's count), the ReLU layer
    conv = 11 * 41 * 1 * 32 + 11 * 21 * 32 * 32
    bn = 2 * 4 * 32
    gru = 2 * (3 * 800 * (1280 + 800) + 6 * 800) + 8 * (3 * 800 * (1600 + 800) + 6 * 800)
    fc = 1600 * 1600 + 1600
    assert model.count_params() == conv + bn + gru + fc == 58_924_832
    # the checkpoint holds the same weights with each gate's two biases summed
    ckpt = ds2.checkpoint_shapes(cfg)
    assert sum(int(np.prod(s)) for s in ckpt.values()) == 58_924_832 - 10 * 2 * 800
    for name, shape in META_GRAPH_SHAPES.items():
        assert ckpt[name] == shape, name
    assert META_GRAPH_GRU_NAME in ckpt and len(ckpt) == 10 + 60 + 2
    cell0 = ds2.SCOPE + "/" + ds2.GRU_CELL.format(i=0, d="fw")
    cell1 = ds2.SCOPE + "/" + ds2.GRU_CELL.format(i=1, d="fw")
    assert ckpt[cell0 + "/gates/kernel"] == (1280 + 800, 1600)
    assert ckpt[cell1 + "/gates/kernel"] == (1600 + 800, 1600)


# ------------------------------------------------------------------------------ checkpoint
def _canonical(rng, cfg):
    """Random parameters in cuDNN's own order: per layer and direction W_k [h, in] and R_k
    [h, h] for k = reset, update, new, and biases b_Wk, b_Rk."""
    f_out, c_out = cfg.conv_output()
    h = cfg.rnn_cell_dim
    p = {"conv": [], "gru": [], "fc": None}
    cin = 1
    for kt, kf, _, _, ch in cfg.conv_layers:
        p["conv"].append({"kernel": rng.normal(0, 0.3, (kt, kf, cin, ch)),
                          "gamma": rng.uniform(0.5, 1.5, ch), "beta": rng.normal(0, 0.1, ch),
                          "mean": rng.normal(0, 0.2, ch), "var": rng.uniform(0.5, 2, ch)})
        cin = ch
    for i in range(cfg.num_rnn_layers):
        width = f_out * c_out if i == 0 else 2 * h
        p["gru"].append({d: {"W": rng.normal(0, 0.3, (3, h, width)),
                             "R": rng.normal(0, 0.3, (3, h, h)),
                             "bW": rng.normal(0, 0.2, (3, h)), "bR": rng.normal(0, 0.2, (3, h))}
                         for d in ("fw", "bw")})
    p["fc"] = (rng.normal(0, 0.3, (2 * h, cfg.n_hidden)), rng.normal(0, 0.1, cfg.n_hidden))
    # the checkpoint stores float16 (mixed precision): the reference uses the rounded values
    return _round(p)


def _round(obj):
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_round(v) for v in obj)
    return np.asarray(obj, np.float16).astype(np.float64)


def _write_checkpoint(prefix, p, cfg, drop=None, reshape=None):
    """OpenSeq2Seq's names; the GRU as TF's CudnnGRUSaveable writes it (its
    _cudnn_to_tf_weights / _cudnn_to_tf_biases)."""
    t = {}
    for i, c in enumerate(p["conv"], start=1):
        t[f"{ds2.SCOPE}/conv{i}/kernel"] = c["kernel"].astype(np.float16)
        for name, key in (("gamma", "gamma"), ("beta", "beta"), ("moving_mean", "mean"),
                          ("moving_variance", "var")):
            t[f"{ds2.SCOPE}/conv{i}/bn/{name}"] = c[key].astype(np.float32)
    for i, layer in enumerate(p["gru"]):
        for d, g in layer.items():
            cell = f"{ds2.SCOPE}/{ds2.GRU_CELL.format(i=i, d=d)}"
            W, R, bW, bR = g["W"], g["R"], g["bW"], g["bR"]  # noqa: N806
            gates = np.concatenate([np.concatenate([W[0], R[0]], 1),
                                    np.concatenate([W[1], R[1]], 1)], 0).T
            t[f"{cell}/gates/kernel"] = gates
            t[f"{cell}/gates/bias"] = np.concatenate([bW[0], bW[1]]) + np.concatenate(
                [bR[0], bR[1]])
            t[f"{cell}/candidate/input_projection/kernel"] = W[2].T
            t[f"{cell}/candidate/input_projection/bias"] = bW[2]
            t[f"{cell}/candidate/hidden_projection/kernel"] = R[2].T
            t[f"{cell}/candidate/hidden_projection/bias"] = bR[2]
    t[f"{ds2.SCOPE}/fully_connected/kernel"], t[f"{ds2.SCOPE}/fully_connected/bias"] = p["fc"]
    t["ForwardPass/fully_connected_ctc_decoder/fully_connected/kernel"] = np.zeros(
        (2 * cfg.rnn_cell_dim, 29))  # present in the real checkpoint, unused by the encoder
    if drop:
        del t[drop]
    if reshape:
        t[reshape] = t[reshape][..., :-1]
    names = sorted(t)
    tensors = [tf.constant(t[n] if t[n].dtype != np.float64 else t[n].astype(np.float16))
               for n in names]
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)
    return prefix


def _conv_same(x, k, st, sf):
    """TF 'SAME' conv: out = ceil(in / s), padding split floor / ceil."""
    kt, kf = k.shape[:2]
    pads = []
    for size, kk, s in ((x.shape[1], kt, st), (x.shape[2], kf, sf)):
        out = -(-size // s)
        total = max((out - 1) * s + kk - size, 0)
        pads.append((total // 2, total - total // 2))
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kt, kf), axis=(1, 2))[:, ::st, ::sf]
    return np.einsum("btfcij,ijcd->btfd", win, k)


def _gru(x, g, reverse):
    """cuDNN's GRU (user guide): r, u gates, new gate with r applied after R h + b_R."""
    h = np.zeros((x.shape[0], g["R"].shape[1]))
    out = np.zeros((x.shape[0], x.shape[1], h.shape[1]))

    def sig(v):
        return 1 / (1 + np.exp(-v))

    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    for t in steps:
        xt = x[:, t]
        r = sig(xt @ g["W"][0].T + g["bW"][0] + h @ g["R"][0].T + g["bR"][0])
        u = sig(xt @ g["W"][1].T + g["bW"][1] + h @ g["R"][1].T + g["bR"][1])
        n = np.tanh(xt @ g["W"][2].T + g["bW"][2] + r * (h @ g["R"][2].T + g["bR"][2]))
        h = (1 - u) * n + u * h
        out[:, t] = h
    return out


def _reference_encoder(spec, p, cfg):
    x = spec[..., None].astype(np.float64)
    for (_, _, st, sf, _), c in zip(cfg.conv_layers, p["conv"], strict=True):
        x = _conv_same(x, c["kernel"], st, sf)
        x = (x - c["mean"]) / np.sqrt(c["var"] + cfg.bn_epsilon) * c["gamma"] + c["beta"]
        x = np.maximum(x, 0)
    x = x.reshape(x.shape[0], x.shape[1], -1)
    for layer in p["gru"]:
        x = np.concatenate([_gru(x, layer["fw"], False), _gru(x, layer["bw"], True)], axis=-1)
    return np.maximum(x @ p["fc"][0] + p["fc"][1], 0)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    p = _canonical(np.random.default_rng(0), SMALL)
    prefix = str(tmp_path_factory.mktemp("ds2") / "model.ckpt-54800")
    return _write_checkpoint(prefix, p, SMALL), p


def test_loader_maps_the_cudnn_canonical_checkpoint_onto_keras(small_checkpoint):
    prefix, p = small_checkpoint
    model = ds2.build_encoder(SMALL)
    ds2.load_openseq2seq_checkpoint(model, prefix, SMALL)
    spec = np.random.default_rng(1).normal(size=(2, 13, 16)).astype(np.float32)
    got = model(spec).numpy()
    want = _reference_encoder(spec, p, SMALL)
    assert got.shape == want.shape == (2, 7, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.abs(want).max() > 0.1  # a non-trivial output


def test_loader_errors_name_the_variable(tmp_path, small_checkpoint):
    _, p = small_checkpoint
    model = ds2.build_encoder(SMALL)
    gates = f"{ds2.SCOPE}/{ds2.GRU_CELL.format(i=1, d='bw')}/gates/kernel"
    missing = _write_checkpoint(str(tmp_path / "a" / "m"), p, SMALL, drop=gates)
    with pytest.raises(ValueError, match=f"no variable {gates}"):
        ds2.load_openseq2seq_checkpoint(model, missing, SMALL)
    bad = _write_checkpoint(str(tmp_path / "b" / "m"), p, SMALL, reshape=gates)
    with pytest.raises(ValueError, match=r"gates/kernel has shape \(18, 11\), the ds2 encoder "
                                         r"expects \(18, 12\)"):
        ds2.load_openseq2seq_checkpoint(model, bad, SMALL)
    with pytest.raises(ValueError, match="no checkpoint in this directory"):
        ds2.load_openseq2seq_checkpoint(model, str(tmp_path), SMALL)
    with pytest.raises(ValueError, match="not a readable TensorFlow checkpoint"):
        ds2.load_openseq2seq_checkpoint(model, str(tmp_path / "nope" / "model.ckpt-1"), SMALL)


# ------------------------------------------------------------------------------ preprocessing
def _reference_features(x):
    """DeepSpeechDistances' get_speech_features for one 16-kHz clip, frame by frame
    (python_speech_features' framesig and logpowspec written out)."""
    x = x / (np.max(np.abs(x)) + 1e-5)
    length = 1 + int(np.ceil((len(x) - 320) / 160))
    if length % 8:
        x = np.concatenate([x, np.zeros((8 - length % 8) * 160)])
    n = 1 if len(x) <= 320 else 1 + int(np.ceil((len(x) - 320) / 160))
    x = np.concatenate([x, np.zeros((n - 1) * 160 + 320 - len(x))])
    rows = []
    for i in range(n):
        frame = x[i * 160:i * 160 + 320] * np.hanning(320)
        ps = np.abs(np.fft.rfft(frame, 320)) ** 2 / 320
        ps[ps <= 1e-30] = 1e-30
        rows.append(10 * np.log10(ps))
    lps = np.array(rows)
    lps = (lps - lps.max())[:, :160]
    return ((lps - lps.mean()) / lps.std()).astype(np.float16)


def test_speech_features_follow_the_released_preprocessing():
    rng = np.random.default_rng(2)
    clips = rng.normal(0, 0.1, (2, 32000))
    got = ds2.speech_features(clips)
    # a 2-s clip: the 199 windows of Eq. 4 (20 ms every 10 ms) + 1 frame of padding to 200
    assert got.shape == (2, 200, 160)
    for b in range(2):
        np.testing.assert_allclose(got[b], _reference_features(clips[b]), atol=2e-3)
    one = rng.normal(0, 0.1, (3, 320))  # one 20-ms window: padded to 8 frames
    assert ds2.speech_features(one).shape == (3, 8, 160)
    np.testing.assert_allclose(ds2.speech_features(one)[1], _reference_features(one[1]),
                               atol=2e-3)
    assert np.all(np.isfinite(ds2.speech_features(np.zeros((1, 32000)))))  # silence


def test_extractor_clip_and_window_modes(small_checkpoint):
    prefix, _ = small_checkpoint
    rng = np.random.default_rng(3)
    audio = rng.uniform(-0.3, 0.3, (2, 4800)).astype(np.float32)  # 0.2 s at 24 kHz
    clip = ds2.DeepSpeech2Features(prefix, "clip", SMALL)
    win = ds2.DeepSpeech2Features(prefix, "window", SMALL, windows_per_call=7)
    assert clip.dim == 10 and not clip.comparable_with_paper
    x16 = extractors.resample_clips(audio, 24000, 16000)
    np.testing.assert_allclose(
        clip(audio), clip.model(ds2.speech_features(x16, 16)).numpy().mean(axis=1), rtol=1e-5)
    # window mode: each of the (3200 - 320) / 160 + 1 = 19 windows alone, then averaged. The
    # windows are the rows of one batch (features are normalised per row, the encoder in
    # inference mode mixes no rows): one call, not 38 eager calls of the GRUs.
    windows = np.stack([x16[b, 160 * i:160 * i + 320] for b in range(2) for i in range(19)])
    per_window = clip.model(ds2.speech_features(windows, 16)).numpy().mean(axis=1)
    np.testing.assert_allclose(win(audio), per_window.reshape(2, 19, -1).mean(axis=1),
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="at least 480 samples"):
        clip(np.zeros((1, 400), np.float32))
    assert extractors.metric_names(clip.name) == ("FDSD", "cFDSD", "KDSD", "cKDSD")
    with pytest.raises(ValueError, match="expected 'clip' or 'window'"):
        ds2.DeepSpeech2Features(prefix, "frames", SMALL)


def test_cli_names_a_bad_checkpoint(small_checkpoint, tmp_path):
    """A checkpoint that is not ds2_large (here the small one) is one clear line."""
    import subprocess
    import sys

    prefix, _ = small_checkpoint
    data = tmp_path / "data"
    data.mkdir()
    run = subprocess.run([sys.executable, "-m", "tts_gan.cli.evaluate", f"--export_dir={data}",
                          f"--data_dir={data}", f"--features=deepspeech2:{prefix}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1].startswith(
        f"tts-gan-eval: {prefix}: ForwardPass/ds2_encoder/conv1/kernel has shape (3, 5, 1, 4), "
        "the ds2 encoder expects (11, 41, 1, 32)")

"""Image files, paired datasets, augmentation and patch sampling (core/data)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nirstream.core.data import (
    Augment,
    AugmentedPairs,
    CsvPairedDataset,
    PairedFolderDataset,
    PairMixture,
    PatchSampler,
    nir_to_gray,
    random_box,
    read_image,
    to_float,
    write_image,
)
from nirstream.core.errors import ConfigError, DataError


def noise(height: int, width: int, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top + 1, (height, width), dtype=dtype)


def colour_of(nir: np.ndarray) -> np.ndarray:
    """An RGB (H×W×3) that is a known per-pixel function of the NIR, so alignment can be checked."""
    return np.dstack([nir, np.iinfo(nir.dtype).max - nir, nir // 2])


def save(path: Path, image: np.ndarray) -> Path:
    """Write with OpenCV directly (RGB converted to its BGR), independent of write_image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image)
    return path


def make_split(root: Path, names: list[str], height: int = 40, width: int = 56, split: str = "train") -> Path:
    for index, name in enumerate(names):
        nir = noise(height, width, seed=index)
        save(root / split / "nir" / f"{name}.png", nir)
        save(root / split / "rgb" / f"{name}.png", colour_of(nir))
    return root


# ---------------------------------------------------------------- image files


def test_read_image_keeps_depth_and_returns_rgb_order(tmp_path):
    gray = noise(9, 7)
    red = np.zeros((4, 5, 3), np.uint8)
    red[..., 0] = 200  # red in RGB order
    deep = noise(6, 8, dtype=np.uint16)

    assert np.array_equal(read_image(save(tmp_path / "g.png", gray)), gray)
    rgb = read_image(save(tmp_path / "c.png", red))
    assert rgb.shape == (4, 5, 3) and rgb[0, 0].tolist() == [200, 0, 0]
    for ending in ("png", "tif"):
        loaded = read_image(save(tmp_path / f"d.{ending}", deep))
        assert loaded.dtype == np.uint16 and np.array_equal(loaded, deep)
    colour16 = colour_of(deep)
    assert np.array_equal(read_image(save(tmp_path / "c16.tiff", colour16)), colour16)


def test_read_image_drops_alpha_and_reads_jpeg(tmp_path):
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 2] = 90  # blue
    rgba[..., 3] = 17  # alpha
    assert cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    loaded = read_image(tmp_path / "a.png")
    assert loaded.shape == (3, 4, 3) and loaded[0, 0].tolist() == [0, 0, 90]

    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (16, 1))
    jpeg = read_image(save(tmp_path / "s.jpg", smooth))
    assert jpeg.shape == (16, 32) and jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - smooth).max() < 12


def test_to_float_scales_by_dtype_range():
    assert to_float(np.array([0, 51, 255], np.uint8)).tolist() == pytest.approx([0.0, 0.2, 1.0])
    scaled = to_float(np.array([0, 4095, 65535], np.uint16))
    assert scaled.dtype == np.float32 and scaled.tolist() == pytest.approx([0.0, 4095 / 65535, 1.0])
    with pytest.raises(DataError, match="int32"):
        to_float(np.zeros(3, np.int32))


def test_nir_to_gray_takes_equal_channels_exactly_and_averages_others():
    nir = noise(5, 6, dtype=np.uint16)
    assert np.array_equal(nir_to_gray(np.dstack([nir, nir, nir])), nir)
    assert nir_to_gray(nir) is nir
    mixed = np.dstack([np.full((2, 2), 10), np.full((2, 2), 20), np.full((2, 2), 40)]).astype(np.uint8)
    averaged = nir_to_gray(mixed)
    assert averaged.dtype == np.uint8 and averaged.tolist() == [[23, 23], [23, 23]]


def test_write_image_round_trips_in_rgb_order_and_creates_folders(tmp_path):
    rgb = colour_of(noise(7, 9))
    target = tmp_path / "new" / "deeper" / "out.png"
    write_image(target, rgb)
    assert np.array_equal(cv2.imread(str(target))[..., ::-1], rgb)  # OpenCV reads BGR
    assert np.array_equal(read_image(target), rgb)


def test_image_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found.*missing.png"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="cannot decode.*broken.png"):
        read_image(tmp_path / "broken.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match="empty.png"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(DataError, match="unsupported file ending '.xyz'"):
        write_image(tmp_path / "out.xyz", colour_of(noise(4, 4)))
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(DataError, match="cannot write image .*file/out.png"):
        write_image(tmp_path / "file" / "out.png", colour_of(noise(4, 4)))


# ---------------------------------------------------------------- paired datasets


def test_folder_dataset_pairs_by_stem_and_returns_full_images(tmp_path):
    nir16 = noise(12, 10, seed=1, dtype=np.uint16)
    save(tmp_path / "val" / "nir" / "b.tif", nir16)  # 16-bit TIFF NIR with an 8-bit PNG RGB
    save(tmp_path / "val" / "rgb" / "b.png", colour_of(noise(12, 10)))
    nir3 = noise(12, 10, seed=2)
    save(tmp_path / "val" / "nir" / "a.png", np.dstack([nir3] * 3))  # NIR saved with three channels
    save(tmp_path / "val" / "rgb" / "a.jpg", colour_of(nir3))
    (tmp_path / "val" / "nir" / "notes.txt").write_text("not an image")

    dataset = PairedFolderDataset(tmp_path, "val")
    assert dataset.names == ["a", "b"]
    first, second = dataset[0], dataset[1]
    assert first["name"] == "a" and first["nir"].shape == (1, 12, 10) and first["rgb"].shape == (3, 12, 10)
    assert first["nir"].dtype == torch.float32 and first["rgb"].dtype == torch.float32
    assert torch.allclose(first["nir"][0], torch.from_numpy(nir3 / 255.0).float())
    assert torch.allclose(second["nir"][0], torch.from_numpy(nir16 / 65535.0).float())
    assert 0.0 <= float(second["rgb"].min()) and float(second["rgb"].max()) <= 1.0


def test_folder_dataset_without_split_reads_root(tmp_path):
    make_split(tmp_path, ["x"], split=".")
    assert PairedFolderDataset(tmp_path, None).names == ["x"]


def test_folder_dataset_reports_unpaired_names(tmp_path):
    make_split(tmp_path, ["shared", "left1", "left2"])
    (tmp_path / "train" / "rgb" / "left1.png").unlink()
    (tmp_path / "train" / "rgb" / "left2.png").unlink()
    save(tmp_path / "train" / "rgb" / "right.png", colour_of(noise(40, 56)))
    with pytest.raises(DataError, match=r"NIR only: left1, left2; RGB only: right"):
        PairedFolderDataset(tmp_path, "train")


def test_folder_dataset_reports_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match=r"image folder not found: .*train/nir"):
        PairedFolderDataset(tmp_path, "train")
    (tmp_path / "train" / "nir").mkdir(parents=True)
    (tmp_path / "train" / "rgb").mkdir()
    with pytest.raises(DataError, match=r"no images .* in .*train/nir"):
        PairedFolderDataset(tmp_path, "train")


def test_folder_dataset_rejects_two_files_with_one_stem(tmp_path):
    make_split(tmp_path, ["x"])
    save(tmp_path / "train" / "nir" / "x.tif", noise(40, 56))
    with pytest.raises(DataError, match="two images named 'x'"):
        PairedFolderDataset(tmp_path, "train")


def test_size_mismatch_names_the_pair_and_both_sizes(tmp_path):
    make_split(tmp_path, ["odd"])
    save(tmp_path / "train" / "rgb" / "odd.png", colour_of(noise(40, 50)))
    dataset = PairedFolderDataset(tmp_path, "train")
    with pytest.raises(DataError, match=r"'odd'.*NIR .*odd.png is 56x40 but RGB .*odd.png is 50x40"):
        dataset[0]


def test_unreadable_and_gray_rgb_files_are_reported_on_read(tmp_path):
    make_split(tmp_path, ["bad", "gray"])
    (tmp_path / "train" / "nir" / "bad.png").write_bytes(b"\x89PNG truncated")
    save(tmp_path / "train" / "rgb" / "gray.png", noise(40, 56))
    dataset = PairedFolderDataset(tmp_path, "train")
    with pytest.raises(DataError, match=r"cannot decode .*nir/bad.png"):
        dataset[0]
    with pytest.raises(DataError, match=r"'gray'.*one channel"):
        dataset[1]


def test_only_keeps_the_named_pairs_and_names_unknown_ones(tmp_path):
    make_split(tmp_path, ["a", "b", "c", "d"])
    assert PairedFolderDataset(tmp_path, "train", only=["d", "b.png"]).names == ["b", "d"]
    with pytest.raises(DataError, match="not in the dataset: e"):
        PairedFolderDataset(tmp_path, "train", only=["a", "e"])


def test_cache_reads_each_pair_once(tmp_path, monkeypatch):
    from nirstream.core.data import paired

    make_split(tmp_path, ["a", "b"])
    reads = []
    real = paired.load_pair
    monkeypatch.setattr(paired, "load_pair", lambda pair: reads.append(pair.name) or real(pair))
    cached = PairedFolderDataset(tmp_path, "train", cache=True)
    first = [cached[i]["rgb"] for i in (0, 1, 0, 1)]
    assert reads == ["a", "b"]
    assert torch.equal(first[0], first[2]) and torch.equal(first[0], PairedFolderDataset(tmp_path, "train")[0]["rgb"])
    Augment(crop=16, hflip=True, contrast=0.5)(cached[0]["nir"], cached[0]["rgb"], torch.Generator().manual_seed(1))
    assert torch.equal(cached[0]["rgb"], first[0])  # augmenting a cached pair leaves the cache untouched


def test_mixture_draws_each_set_with_its_own_augment_and_repeat(tmp_path):
    make_split(tmp_path / "small", ["s0", "s1"], height=40, width=40)
    make_split(tmp_path / "large", ["l0"], height=120, width=160)
    small, large = PairedFolderDataset(tmp_path / "small", "train"), PairedFolderDataset(tmp_path / "large", "train")
    mixture = PairMixture([(small, Augment(crop=32), 1), (large, Augment(crop=24, scale=(0.25, 0.5)), 3)])
    assert len(mixture) == 2 + 3
    names = [mixture[(position, position)]["name"] for position in range(len(mixture))]
    assert names == ["s0", "s1", "l0", "l0", "l0"]
    assert mixture[(0, 0)]["nir"].shape[-1] == 32 and mixture[(2, 0)]["nir"].shape[-1] == 24
    crops = [mixture[(position, 7 + position)]["nir"] for position in (2, 3, 4)]
    assert not torch.equal(crops[0], crops[1])  # repeats of one pair are different crops
    assert torch.equal(mixture[(3, 5)]["nir"], mixture[(3, 5)]["nir"])  # and each is fixed by its key
    with pytest.raises(IndexError):
        mixture[(5, 0)]


def test_exclude_drops_names_with_or_without_file_ending(tmp_path):
    make_split(tmp_path, ["a", "b", "c", "d"])
    dataset = PairedFolderDataset(tmp_path, "train", exclude=["b", "d.png", "not_here"])
    assert dataset.names == ["a", "c"]
    with pytest.raises(DataError, match="no image pairs left"):
        PairedFolderDataset(tmp_path, "train", exclude=["a", "b", "c", "d"])


def test_csv_dataset_with_own_columns_root_and_split(tmp_path):
    images = tmp_path / "images"
    for index, name in enumerate(["p", "q", "r"]):
        nir = noise(20, 24, seed=index)
        save(images / f"{name}_nir.png", nir)
        save(images / f"{name}_rgb.jpg", colour_of(nir))
    table = tmp_path / "meta" / "index.csv"
    table.parent.mkdir()
    table.write_text(
        "subset,NIR,RGB\n"
        "train,p_nir.png,p_rgb.jpg\n"
        "test,q_nir.png,q_rgb.jpg\n"
        "train,r_nir.png,r_rgb.jpg\n"
    )
    options = {"nir_column": "NIR", "rgb_column": "RGB", "split_column": "subset", "root": images}
    dataset = CsvPairedDataset(table, split="train", **options)
    assert dataset.names == ["p_nir", "r_nir"]
    item = dataset[1]
    assert item["nir"].shape == (1, 20, 24) and item["rgb"].shape == (3, 20, 24)
    assert len(CsvPairedDataset(table, **options)) == 3

    with pytest.raises(DataError, match=r"no rows with subset='val' \(present: test, train\)"):
        CsvPairedDataset(table, split="val", **options)
    with pytest.raises(DataError, match=r"no column 'nir_file'.*columns: subset, NIR, RGB"):
        CsvPairedDataset(table, root=images)
    with pytest.raises(DataError, match=r"6 image\(s\) listed .* not found: .*meta/p_nir.png"):
        CsvPairedDataset(table, nir_column="NIR", rgb_column="RGB")


def test_csv_dataset_reads_vcip_style_pairs_csv_with_defaults(tmp_path):
    make_split(tmp_path, ["one", "two"], split="train")
    make_split(tmp_path, ["three"], split="val")
    (tmp_path / "pairs.csv").write_text(
        "split,name,category,nir_file,rgb_file\n"
        "train,one,x,train/nir/one.png,train/rgb/one.png\n"
        "train,two,x,train/nir/two.png,train/rgb/two.png\n"
        "val,three,y,val/nir/three.png,val/rgb/three.png\n"
    )
    assert CsvPairedDataset(tmp_path / "pairs.csv", split="val").names == ["three"]
    train = CsvPairedDataset(tmp_path / "pairs.csv", split="train")
    assert train.names == PairedFolderDataset(tmp_path, "train").names
    assert torch.equal(train[1]["rgb"], PairedFolderDataset(tmp_path, "train")[1]["rgb"])


# ---------------------------------------------------------------- augmentation


def test_crop_flips_and_scale_keep_nir_and_rgb_aligned(tmp_path):
    make_split(tmp_path, ["a", "b"], height=40, width=56)
    pairs = PairedFolderDataset(tmp_path, "train")
    dataset = AugmentedPairs(pairs, Augment(crop=24, hflip=True, vflip=True))
    for index in range(20):
        item = dataset[index % 2, index]
        assert item["name"] == pairs.names[index % 2]
        assert item["nir"].shape == (1, 24, 24) and item["rgb"].shape == (3, 24, 24)
        n = torch.round(item["nir"][0] * 255)
        assert torch.equal(torch.round(item["rgb"][0] * 255), n)
        assert torch.equal(torch.round(item["rgb"][1] * 255), 255 - n)
        assert torch.equal(torch.round(item["rgb"][2] * 255), torch.floor(n / 2))

    scaled = AugmentedPairs(pairs, Augment(crop=24, vflip=True, scale=(0.6, 1.4)))
    for index in range(10):
        item = scaled[index % 2, index]
        assert item["nir"].shape == (1, 24, 24)
        # resizing is linear, so the first RGB channel (equal to the NIR) stays equal to it
        assert torch.allclose(item["rgb"][0], item["nir"][0], atol=1e-5)
        assert torch.allclose(item["rgb"][2], item["nir"][0] / 2, atol=2.5 / 255)


def test_16_bit_pairs_are_cropped_aligned_at_full_precision(tmp_path):
    nir = noise(40, 56, seed=3, dtype=np.uint16)
    save(tmp_path / "nir" / "deep.tif", nir)
    save(tmp_path / "rgb" / "deep.tif", colour_of(nir))
    dataset = AugmentedPairs(PairedFolderDataset(tmp_path, None), Augment(crop=24, hflip=True, vflip=True))
    for seed in range(10):
        item = dataset[0, seed]
        n = torch.round(item["nir"][0].double() * 65535)
        assert torch.equal(torch.round(item["rgb"][0].double() * 65535), n)
        assert torch.equal(torch.round(item["rgb"][1].double() * 65535), 65535 - n)
        assert bool((n % 256 != 0).any())  # not quantised to 8 bits


def test_flips_happen_and_apply_to_both_images():
    ramp = torch.linspace(0, 1, 16).expand(1, 8, 16)
    rgb = ramp.expand(3, 8, 16)
    augment = Augment(crop=None, hflip=True)
    generator = torch.Generator().manual_seed(3)
    flipped = 0
    for _ in range(40):
        nir, out = augment(ramp, rgb, generator)
        assert torch.equal(out, nir.expand(3, 8, 16))
        flipped += bool(nir[0, 0, 0] > nir[0, 0, -1])
    assert 5 < flipped < 35


def test_scale_below_one_zooms_out():
    step = 1 / 128
    ramp = (torch.arange(64.0) * step).expand(1, 64, 64)
    nir, rgb = Augment(crop=16, hflip=False, scale=(0.5, 0.5))(ramp, ramp.expand(3, 64, 64))
    assert nir.shape == (1, 16, 16) and rgb.shape == (3, 16, 16)
    # a 32 px window shrunk to 16 doubles the step (the border pixels see the antialias filter's edge)
    assert torch.allclose(nir[0].diff(dim=1)[:, 1:-1], torch.full((16, 13), 2 * step), atol=1e-5)


def test_zooming_out_filters_fine_detail_instead_of_aliasing_it():
    stripes = (torch.arange(128) // 4 % 2).float().expand(1, 128, 128)  # 4 px dark, 4 px bright
    nir, _ = Augment(crop=32, hflip=False, scale=(0.25, 0.25))(stripes, stripes.expand(3, 128, 128))
    # point-sampled at 1/4, these stripes would alias into full-contrast 1 px stripes
    assert float(nir.std()) < 0.35  # filtered: about 0.26; aliased: 0.5


def test_crop_without_flips_takes_an_unflipped_window(tmp_path):
    make_split(tmp_path, ["a"], height=30, width=30)
    pairs = PairedFolderDataset(tmp_path, "train")
    full = pairs[0]["nir"][0]
    cropped = AugmentedPairs(pairs, Augment(crop=12, hflip=False, vflip=False))
    windows = full.unfold(0, 12, 1).unfold(1, 12, 1)  # every 12×12 window, unflipped
    for seed in range(5):
        patch = cropped[0, seed]["nir"][0]
        assert (windows == patch).flatten(2).all(-1).any()


def test_nir_jitter_leaves_rgb_and_geometry_unchanged():
    nir, rgb = torch.rand(1, 32, 32), torch.rand(3, 32, 32)
    plain = Augment(crop=20, hflip=True, vflip=True)
    jittered = Augment(crop=20, hflip=True, vflip=True, contrast=0.5, brightness=0.2)
    nir_plain, rgb_plain = plain(nir, rgb, torch.Generator().manual_seed(7))
    nir_jit, rgb_jit = jittered(nir, rgb, torch.Generator().manual_seed(7))
    assert torch.equal(rgb_plain, rgb_jit)
    assert not torch.allclose(nir_plain, nir_jit)
    assert float(nir_jit.min()) >= 0.0 and float(nir_jit.max()) <= 1.0
    # an increasing affine map of intensity (then clipped) keeps the order of the pixels
    order = nir_plain.flatten().argsort()
    assert bool((nir_jit.flatten()[order].diff() >= -1e-6).all())


def test_augmented_pairs_are_reproducible_from_the_item_seed(tmp_path):
    make_split(tmp_path, ["a", "b"])
    pairs = PairedFolderDataset(tmp_path, "train")
    augment = Augment(crop=20, vflip=True, contrast=0.3, scale=(0.7, 1.2))
    dataset = AugmentedPairs(pairs, augment)
    assert len(dataset) == len(pairs) == 2
    keys = [(i % 2, 100 + i) for i in range(6)]
    first = [dataset[key]["nir"] for key in keys]
    torch.manual_seed(999)  # the global RNG plays no part
    second = [dataset[key]["nir"] for key in reversed(keys)][::-1]  # nor does the order of reads
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[2])  # same image, different seeds
    # the key's seed seeds a fresh generator: the same draws as calling Augment with one directly
    item = pairs[1]
    nir, rgb = augment(item["nir"], item["rgb"], torch.Generator().manual_seed(105))
    assert torch.equal(nir, first[5]) and torch.equal(rgb, dataset[1, 105]["rgb"])


def test_augmented_pairs_take_index_and_seed_keys_only(tmp_path):
    make_split(tmp_path, ["a"])
    dataset = AugmentedPairs(PairedFolderDataset(tmp_path, "train"), Augment(crop=16))
    with pytest.raises(TypeError, match=r"\(index, seed\) keys, got 0"):
        dataset[0]


def test_dataloader_workers_reproduce_crops_from_the_item_keys(tmp_path):
    make_split(tmp_path, ["a", "b", "c", "d"])
    dataset = AugmentedPairs(PairedFolderDataset(tmp_path, "train"), Augment(crop=16, vflip=True, contrast=0.2))

    def batches(seed: int, workers: int) -> list[torch.Tensor]:
        order = torch.randperm(4, generator=torch.Generator().manual_seed(seed)).tolist()
        keys = [(index, seed * 1000 + index) for index in order]
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, sampler=keys, num_workers=workers)
        return [batch["nir"] for batch in loader]

    first, again, other = batches(5, workers=2), batches(5, workers=0), batches(6, workers=2)
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(first, other, strict=True))


def test_crop_larger_than_image_names_the_pair(tmp_path):
    make_split(tmp_path, ["small"], height=40, width=56)
    dataset = AugmentedPairs(PairedFolderDataset(tmp_path, "train"), Augment(crop=48))
    with pytest.raises(DataError, match=r"'small' is 56x40, smaller than the 48 px crop"):
        dataset[0, 0]


def test_invalid_options_are_config_errors():
    with pytest.raises(ConfigError, match="contrast"):
        Augment(contrast=1.5)
    with pytest.raises(ConfigError, match="scale"):
        Augment(scale=(1.2, 0.8))
    with pytest.raises(ConfigError, match="crop must be set"):
        Augment(crop=None, scale=[0.5, 1.0])
    with pytest.raises(ConfigError, match="tries"):
        PatchSampler(tries=0)
    with pytest.raises(ConfigError, match="crop must be set"):
        Augment(crop=None, patches=PatchSampler())


# ---------------------------------------------------------------- patch sampling


def half_flat(height: int = 64, width: int = 256) -> torch.Tensor:
    """A NIR whose left half is uniform (sky) and right half textured."""
    nir = torch.full((1, height, width), 0.6)
    texture = torch.rand(1, height, width - width // 2, generator=torch.Generator().manual_seed(0))
    nir[..., width // 2 :] = texture
    return nir


def test_patch_sampler_avoids_the_uniform_half():
    nir, size = half_flat(), 64
    generator = torch.Generator().manual_seed(1)
    flat_uniform = sum(random_box(64, 256, size, generator)[1] + size <= 128 for _ in range(200))
    assert flat_uniform > 40  # a uniform crop lands in the flat half about a third of the time

    sampler = PatchSampler(min_std=0.05, tries=8)
    for _ in range(200):
        top, left = sampler.box(nir, size, generator)
        assert float(nir[..., top : top + size, left : left + size].std()) >= 0.05


def test_patch_sampler_falls_back_to_the_most_textured_candidate():
    nir = half_flat()
    sampler = PatchSampler(min_std=2.0, tries=5)  # unreachable: every candidate is rejected
    chosen = sampler.box(nir, 64, torch.Generator().manual_seed(4))
    replay = torch.Generator().manual_seed(4)
    candidates = [random_box(64, 256, 64, replay) for _ in range(5)]
    stds = [float(nir[..., t : t + 64, l : l + 64].std()) for t, l in candidates]
    assert chosen == candidates[int(np.argmax(stds))]


def test_augment_with_patches_crops_textured_regions_of_large_images(tmp_path):
    nir = (half_flat(96, 320)[0].numpy() * 255).round().astype(np.uint8)
    save(tmp_path / "nir" / "wide.png", nir)
    save(tmp_path / "rgb" / "wide.png", colour_of(nir))
    augment = Augment(crop=64, hflip=False, vflip=False, patches=PatchSampler(min_std=0.05))
    dataset = AugmentedPairs(PairedFolderDataset(tmp_path, None), augment)
    for seed in range(15):
        item = dataset[0, seed]
        assert float(item["nir"].std()) >= 0.05
        assert torch.equal(torch.round(item["rgb"][0] * 255), torch.round(item["nir"][0] * 255))


# ---------------------------------------------------------------- real data


@pytest.mark.data
def test_vcip_folder_and_pairs_csv(vcip_root):
    train, val = PairedFolderDataset(vcip_root, "train"), PairedFolderDataset(vcip_root, "val")
    assert (len(train), len(val)) == (372, 18)
    item = val[0]
    assert item["nir"].shape == (1, 256, 256) and item["rgb"].shape == (3, 256, 256)
    assert CsvPairedDataset(vcip_root / "pairs.csv", split="val").names == val.names
    assert CsvPairedDataset(vcip_root / "pairs.csv", split="train").names == train.names
    cropped = AugmentedPairs(train, Augment())[0, 0]
    assert cropped["nir"].shape == (1, 200, 200) and cropped["rgb"].shape == (3, 200, 200)


@pytest.mark.data
def test_epfl_high_resolution_patches(epfl_root):
    dataset = AugmentedPairs(PairedFolderDataset(epfl_root, None), Augment(crop=200, patches=PatchSampler()))
    assert len(dataset) == 34
    item = dataset[0, 0]
    assert item["nir"].shape == (1, 200, 200) and item["rgb"].shape == (3, 200, 200)

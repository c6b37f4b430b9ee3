"""Files that Pillow would decode as something other than PNG or JPEG, links and Pillow's warnings."""

import warnings

import numpy as np
import pytest
from PIL import Image

from ffoc.cli import main
from ffoc.io_images import list_image_files, read_image_folder

# Text and headers that Pillow's XBM, PPM and DDS decoders accept and then fail on with errors other than
# OSError. Saved as .png, they must count as unreadable files.
_NOT_PNG = {
    "xbm": b"#define img_width 1x\n#define img_height 16\n",
    "ppm": b"P6\n16 1x\n255\n",
    "dds": b"DDS " + (124).to_bytes(4, "little") + bytes(120),
}


@pytest.mark.parametrize("kind", sorted(_NOT_PNG))
def test_read_image_folder_other_format_named_png(tmp_path, kind):
    Image.new("L", (4, 4), 10).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(_NOT_PNG[kind])
    with pytest.raises(ValueError, match=r"Cannot read 1 of the 2 image files .*b\.png"):
        read_image_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"Skipped unreadable image '.*b\.png'"):
        images, names = read_image_folder(tmp_path, skip_unreadable=True)
    assert names == ["a.png"]
    assert images.shape == (1, 1, 4, 4)


def test_cli_fit_images_other_format_named_png(tmp_path, capsys):
    folder = tmp_path / "train"
    folder.mkdir()
    for index in range(4):
        Image.new("L", (6, 6), 40 * index).save(folder / f"{index}.png")
    (folder / "notes.png").write_bytes(_NOT_PNG["dds"])
    model = tmp_path / "model.safetensors"
    assert main(["fit-images", str(folder), "--out", str(model), "--conv-channels", "2", "--epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "notes.png" in error


def test_read_image_folder_broken_link(tmp_path):
    Image.new("L", (4, 4), 10).save(tmp_path / "a.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "link-to-folder.png").symlink_to(tmp_path / "folder.png")
    assert [p.name for p in list_image_files(tmp_path)] == ["a.png", "gone.png"]
    with pytest.raises(ValueError, match=r"Cannot read 1 of the 2 image files .*gone\.png"):
        read_image_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"Skipped unreadable image '.*gone\.png'"):
        _, names = read_image_folder(tmp_path, skip_unreadable=True)
    assert names == ["a.png"]


def test_read_image_folder_pillow_warning_names_file(tmp_path, monkeypatch):
    Image.new("L", (4, 4)).save(tmp_path / "big.png")
    Image.new("L", (2, 2)).save(tmp_path / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 16 pixels: above the limit, under twice it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, names = read_image_folder(tmp_path, size=(2, 2))
    assert names == ["big.png", "small.png"]
    assert images.shape == (2, 1, 2, 2)
    assert len(caught) == 1
    assert issubclass(caught[0].category, Image.DecompressionBombWarning)
    assert "big.png" in str(caught[0].message)
    assert np.all(images[1] == 0)

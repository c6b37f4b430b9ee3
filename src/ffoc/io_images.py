"""Reading a folder of PNG or JPEG files into an image array (Pillow)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "list_image_files", "read_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# Pillow's names of the formats read; the suffixes above are not enough to select the decoder.
_PILLOW_FORMATS = ("PNG", "JPEG")

# Pillow modes with one grey level per pixel.
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def list_image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Return the PNG and JPEG files directly inside ``folder``, sorted by name.

    Broken symbolic links with an image suffix are listed too, so that reading
    them reports them as unreadable; folders and other special files are not.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    NotADirectoryError
        If ``folder`` is a file.
    ValueError
        If the folder contains no PNG or JPEG file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"Image folder {str(folder)!r} not found.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{str(folder)!r} is not a folder; give a folder of PNG or JPEG files.")
    files = sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_file() or (p.is_symlink() and not p.exists()))
    )
    if not files:
        raise ValueError(f"No PNG or JPEG file (suffix {', '.join(IMAGE_SUFFIXES)}) found in {str(folder)!r}.")
    return files


def read_image_folder(
    folder: str | os.PathLike[str],
    *,
    mode: str = "auto",
    size: tuple[int, int] | None = None,
    skip_unreadable: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Read every PNG and JPEG file of ``folder`` into one array of shape (n, channels, height, width).

    Parameters
    ----------
    folder : str or os.PathLike
        Folder whose ``.png``, ``.jpg`` and ``.jpeg`` files (any letter case) are
        read, sorted by name; subfolders and other files are ignored.
    mode : {"auto", "grey", "rgb"}, default="auto"
        ``"grey"`` converts every image to one grey channel, ``"rgb"`` to three
        channels (an alpha channel is dropped). ``"auto"`` gives one channel
        when every file is a grey-level image and three otherwise.
    size : tuple (width, height) or None, default=None
        Resize every image to this size (bilinear). ``None`` requires all
        images to have the same size.
    skip_unreadable : bool, default=False
        Leave out the files that cannot be read as images, with a warning
        naming each one, in place of raising. ``names`` then lists only the
        files that were read. A file is unreadable when it is not a PNG or
        JPEG file whatever its suffix, when decoding it fails, or when it is a
        broken symbolic link.

    Returns
    -------
    images : ndarray of shape (n, channels, height, width)
        uint8 pixels for 8-bit files; float32 for 16-bit and floating-point grey files.
    names : list of str
        File names, in the order of ``images``.

    Raises
    ------
    ValueError
        If a file cannot be decoded (without ``skip_unreadable``) or none can,
        the sizes differ and ``size`` is None, or ``mode`` is unknown.

    Warns
    -----
    UserWarning
        For each file left out with ``skip_unreadable=True``. Warnings Pillow
        gives while reading a file (such as ``DecompressionBombWarning`` for an
        image above ``PIL.Image.MAX_IMAGE_PIXELS``) are given again with the
        file name in front.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> Image.new("L", (5, 4), 200).save(f"{folder}/a.png")
    >>> images, names = read_image_folder(folder)
    >>> images.shape, names
    ((1, 1, 4, 5), ['a.png'])
    """
    from PIL import Image

    if mode not in ("auto", "grey", "rgb"):
        raise ValueError(f"Unknown mode {mode!r}; choose 'auto', 'grey' or 'rgb'.")
    if size is not None:
        width, height = (int(s) for s in size)
        if width < 1 or height < 1:
            raise ValueError(f"size={size!r} must be two positive integers (width, height).")
        size = (width, height)
    files = list_image_files(folder)

    pictures, readable, unreadable = [], [], []
    for path in files:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # Only the formats ffoc reads: Pillow otherwise picks a decoder from the content, whatever
                # the suffix, and the decoders of other formats fail in many ways (ValueError,
                # NotImplementedError, SyntaxError) on text files saved as .png.
                with Image.open(path, formats=_PILLOW_FORMATS) as picture:
                    picture.load()
                    pictures.append(picture.copy())
                    readable.append(path)
        except Exception as error:  # noqa: BLE001 - any failure to decode one file makes that file unreadable
            unreadable.append(f"{str(path)!r} ({str(error) or type(error).__name__})")
        for caught_warning in caught:
            warnings.warn(f"{str(path)!r}: {caught_warning.message}", caught_warning.category, stacklevel=2)
    if unreadable and not skip_unreadable:
        listed = "; ".join(unreadable[:5]) + (f"; and {len(unreadable) - 5} more" if len(unreadable) > 5 else "")
        raise ValueError(
            f"Cannot read {len(unreadable)} of the {len(files)} image files in {str(folder)!r}: {listed}. Remove or "
            "replace them, or leave them out (--skip-unreadable on the command line, skip_unreadable=True in Python)."
        )
    for entry in unreadable:
        warnings.warn(f"Skipped unreadable image {entry}.", UserWarning, stacklevel=2)
    if not pictures:
        raise ValueError(
            f"None of the {len(files)} PNG or JPEG file(s) in {str(folder)!r} can be read as an image. "
            "Check that the folder contains the images you meant."
        )
    files = readable

    if mode == "auto":
        mode = "grey" if all(p.mode in _GREY_MODES for p in pictures) else "rgb"

    arrays = []
    for path, picture in zip(files, pictures):
        if mode == "rgb":
            picture = picture.convert("RGB")
        elif picture.mode not in ("L", "I", "I;16", "F"):
            picture = picture.convert("L")
        if size is not None and picture.size != size:
            picture = picture.resize(size, Image.Resampling.BILINEAR)
        array = np.asarray(picture)
        if array.dtype != np.uint8:
            array = array.astype(np.float32)
        arrays.append(array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0))

    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape
        other = next(i for i, a in enumerate(arrays) if a.shape != first)
        raise ValueError(
            f"Images in {str(folder)!r} differ in size: {files[0].name} is {first[2]}x{first[1]} pixels "
            f"(width x height), {files[other].name} is {arrays[other].shape[2]}x{arrays[other].shape[1]}. "
            "Pass a common size to resize them to (--size WIDTHxHEIGHT on the command line, size= in Python)."
        )
    dtype = np.uint8 if all(a.dtype == np.uint8 for a in arrays) else np.float32
    images = np.stack([a.astype(dtype, copy=False) for a in arrays])
    return images, [p.name for p in files]

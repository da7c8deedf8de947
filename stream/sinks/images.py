"""Writing each colorized frame as its own image file, named after its input image or its index."""

from pathlib import Path

from nirstream.core.data.images import write_image
from nirstream.core.errors import DataError
from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.spec import SinkConfig, refuse_to_replace
from nirstream.stream.sinks.compose import output_image


class ImageSequenceSink(Sink):
    """One file per frame in ``folder``, each the size of its frame.

    A frame read from an image file is saved under that file's name (``drive_0042.tif`` ->
    ``drive_0042.png``; two inputs that differ only in their ending keep it: ``a_tif.png``);
    other frames (from a video or a camera) are named by ``pattern``, formatted with ``index``.
    The format follows the pattern's file ending (PNG by default, lossless). Every file appears
    whole when ``write`` returns (see :func:`write_image`), so there is nothing to finalise at
    close. An image already in the folder is never replaced unless ``overwrite``.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        pattern: str = "{index:06d}.png",
        side_by_side: bool = SinkConfig.side_by_side,
        overwrite: bool = SinkConfig.overwrite,
    ) -> None:
        self.folder = Path(folder)
        self.pattern = pattern
        self.side_by_side = side_by_side
        self.overwrite = overwrite
        self.frames_written = 0
        self._bit_depth: int | None = None
        self._used: set[str] = set()

    @property
    def label(self) -> str:
        return str(self.folder)

    def open(self, info: StreamInfo) -> None:
        self._bit_depth = info.bit_depth
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"cannot create image folder {self.folder}: {error.strerror or error}") from error

    def write(self, frame: Frame) -> None:
        path = self.folder / self._file_name(frame)
        refuse_to_replace(path, self.overwrite)
        image = output_image(frame, side_by_side_view=self.side_by_side, bit_depth=self._bit_depth)
        try:
            write_image(path, image)
        except DataError as error:
            raise SinkError(str(error)) from error
        self.frames_written += 1

    def _file_name(self, frame: Frame) -> str:
        ending = Path(self.pattern).suffix or ".png"
        if not frame.name:
            return self.pattern.format(index=frame.index)
        name = Path(frame.name)
        file_name = name.stem + ending
        if file_name in self._used:  # a.png and a.tif in one folder
            file_name = f"{name.stem}_{name.suffix.lstrip('.')}{ending}"
        self._used.add(file_name)
        return file_name

    def close(self, complete: bool = True) -> None:
        """Nothing to finalise: each file was written whole."""

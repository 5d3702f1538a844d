"""Decompression bombs for tests and bench/upload_bounds.py, made as an attacker would, written as they
are deflated (never held in memory)."""
import io
import struct
import zipfile
from pathlib import Path

from openpyxl import Workbook

MB = 1024 * 1024


def workbook_with_cell(path: Path, megabytes: int) -> Path:
    """A real .xlsx (openpyxl's parts) whose sheet has a header row and one row with a cell of
    ``megabytes`` MB of "A", deflated as it is written: the test never holds it in memory."""
    book = Workbook()
    book.active.append(["姓名", "手机"])
    buffer = io.BytesIO()
    book.save(buffer)
    source = zipfile.ZipFile(buffer)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                out.writestr(info.filename, source.read(info))
                continue
            with out.open(info.filename, "w") as sheet:
                sheet.write(b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                            b'<row r="1"><c r="A1" t="inlineStr"><is><t>&#22995;&#21517;</t></is></c>'
                            b'<c r="B1" t="inlineStr"><is><t>&#25163;&#26426;</t></is></c></row>'
                            b'<row r="2"><c r="A2" t="inlineStr"><is><t>')
                chunk = b"A" * MB
                for _ in range(megabytes):
                    sheet.write(chunk)
                sheet.write(b'</t></is></c><c r="B2" t="inlineStr"><is><t>13800138000</t></is></c></row>'
                            b"</sheetData></worksheet>")
    return path


def lying_copy(bomb: Path, path: Path, member: str = "xl/worksheets/sheet1.xml", size: int = 4096) -> Path:
    """The same archive with ``member``'s uncompressed size, in its local header and its central
    directory entry, declared as ``size``: what a crafted bomb does to pass a check of headers only."""
    data = bytearray(bomb.read_bytes())
    name = member.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        while at != -1:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(name)] == name:
                data[at + offset:at + offset + 4] = struct.pack("<I", size)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    return path

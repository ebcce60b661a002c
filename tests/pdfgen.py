"""Small PDFs written byte by byte for the tests (Helvetica text, one content stream a page; no library)."""

from __future__ import annotations


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A PDF whose page i shows pages[i] (lines split at \\n); title, author and date in its info."""
    objs: list[str | None] = []

    def add(s: str | None) -> int:
        objs.append(s)
        return len(objs)

    font = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    page_ids = []
    content_ids = []
    for text in pages:
        lines = text.split("\n")
        ops = "BT /F1 11 Tf 50 750 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
        content_ids.append(add(f"<< /Length {len(ops)} >>\nstream\n{ops}\nendstream"))
        page_ids.append(add(None))
    pages_obj = add(None)
    for cid, pid in zip(content_ids, page_ids, strict=True):
        objs[pid - 1] = (f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 612 792] /Contents {cid} 0 R "
                         f"/Resources << /Font << /F1 {font} 0 R >> >> >>")
    objs[pages_obj-1] = f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {len(page_ids)} >>"
    catalog = add(f"<< /Type /Catalog /Pages {pages_obj} 0 R >>")
    info = add(f"<< /Title ({title}) /Author (Coast Herald) /CreationDate (D:20240402120000Z) >>") if title else None
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{o}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objs)+1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    trailer = f"<< /Size {len(objs)+1} /Root {catalog} 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    return out

"""What a widget shows after a move, judged the way tests/browser/drive_lesson.mjs judges it in the page.

``png_facts`` measures one PNG (it runs inside a Colab-like kernel too, injected by its source, so it
uses only the standard library, numpy and PIL); ``picture_problems`` compares the pictures of one
widget before and after a move. Keep both in step with ``pageWidgetImages``/``checkImages`` in the
browser driver: same background rule, same 1% threshold, same three failures.
"""

from __future__ import annotations

# Least share of non-background pixels for a picture to count as drawn (a labelled matplotlib plot has
# several per cent; a blank canvas has none).
MIN_INK = 0.01


def png_facts(png: bytes) -> dict:
    """Decode ``png``; its size, a hash of its bytes, and its "ink": the share of pixels that differ by
    more than 32 in some channel from the most common colour (alpha composited on white)."""
    import hashlib
    import io

    import numpy as np
    from PIL import Image

    facts = {"hash": hashlib.sha256(png).hexdigest()[:16], "bytes": len(png)}
    try:
        with Image.open(io.BytesIO(png)) as img:
            rgba = img.convert("RGBA")
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the finding
        facts["error"] = f"not decodable ({type(exc).__name__}: {exc})"
        return facts
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    pixels = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.int16)
    facts["width"], facts["height"] = rgba.size
    if pixels.size == 0:
        facts["error"] = "decoded to 0 pixels"
        return facts
    flat = pixels.reshape(-1, 3)
    keys = ((flat[:, 0] >> 3) << 10) | ((flat[:, 1] >> 3) << 5) | (flat[:, 2] >> 3)
    background = np.bincount(keys).argmax()
    colour = np.array([(background >> 10) & 31, (background >> 5) & 31, background & 31]) * 8 + 4
    facts["ink"] = float((np.abs(flat - colour).max(axis=1) > 32).mean())
    return facts


def picture_problems(before: list[dict], after: list[dict]) -> list[str]:
    """What is wrong with a widget's pictures after a move (``png_facts`` of each), given those before."""
    problems = []
    if before and not after:
        problems.append(f"it showed {len(before)} picture(s) before the move and none after")
    for i, img in enumerate(after):
        name = f"picture {i + 1} of {len(after)}"
        if img.get("error"):
            problems.append(f"{name} is {img['error']}")
            continue
        if img["ink"] < MIN_INK:
            problems.append(
                f"{name} is blank: {img['ink']:.2%} of its {img['width']}x{img['height']} pixels "
                f"differ from the background (needs {MIN_INK:.0%}); {img['bytes']} bytes of PNG"
            )
        if i < len(before) and before[i]["hash"] == img["hash"]:
            problems.append(f"{name} is the same image as before the move")
    return problems

"""How tensors print: NumPy's layout, with the device and dtype shown, and an
HTML table for Jupyter. Printing realizes a pending tensor (a host read)."""
import numpy as np


def _host(t):
    a = t.numpy()
    if t.dtype.kind == "f" and t.dtype.itemsize <= 2:
        a = a.astype(np.float32)
    return a


def tensor_str(t):
    return np.array2string(_host(t), separator=", ", threshold=1000, edgeitems=3)


def tensor_repr(t):
    body = np.array2string(_host(t), separator=", ", prefix="tensor(", threshold=1000,
                           edgeitems=3)
    extras = [f"dtype={t.dtype.name}"]
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    else:
        extras.append("device='cpu'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return f"tensor({body}, {', '.join(extras)})"


def tensor_html(t):
    import html
    a = _host(t)
    head = (f"<b>tessera.Tensor</b> shape={t.shape} dtype={t.dtype.name} "
            f"device={t.device}" + (f" grad_fn={t.grad_fn.name}" if t.grad_fn else ""))
    if a.ndim <= 2 and a.size <= 400:
        rows = a.reshape(1, -1) if a.ndim < 2 else a
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>"
                        for r in rows)
        return f"<div>{head}<table>{cells}</table></div>"
    return f"<div>{head}<pre>{html.escape(tensor_str(t))}</pre></div>"

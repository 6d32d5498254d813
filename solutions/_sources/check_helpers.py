def check_array(name, got, expected, rtol=None, atol=None):
    """Compare an answer with the expected array: type, then shape, then dtype, then values."""
    expected = np.asarray(expected)
    assert isinstance(got, np.ndarray), f"{name}: expected a numpy array, got {type(got).__name__}: {got!r}"
    assert got.shape == expected.shape, f"{name}: expected shape {expected.shape}, got shape {got.shape}"
    assert got.dtype == expected.dtype, f"{name}: expected dtype {expected.dtype}, got dtype {got.dtype}"
    if rtol is None:
        rtol, atol = (1e-4, 1e-5) if expected.dtype == np.float32 else (1e-7, 1e-9)
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        bad = np.argwhere(~np.isclose(got, expected, rtol=rtol, atol=atol))
        where = tuple(int(i) for i in bad[0])
        detail = f"\nexpected:\n{expected}\ngot:\n{got}" if expected.size <= 36 else ""
        raise AssertionError(
            f"{name}: {len(bad)} of {expected.size} values differ; first at index {where}: "
            f"expected {expected[where].item()!r}, got {got[where].item()!r}{detail}")


def check_number(name, got, expected, rtol=1e-7, atol=1e-9, integer=False):
    """Compare an answer with an expected number (an int when ``integer``), with a clear message."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    assert isinstance(got, kinds) and not isinstance(got, (bool, np.bool_)), \
        f"{name}: expected {'an int' if integer else 'a number'}, got {type(got).__name__}: {got!r}"
    if integer:
        assert got == expected, f"{name}: expected {expected}, got {got}"
    else:
        assert abs(got - expected) <= atol + rtol * abs(expected), f"{name}: expected {expected!r}, got {got!r}"

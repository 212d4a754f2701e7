"""Post-order walk of a DAG without recursion (deep tapes and expression graphs
would overflow Python's stack). Shared by the autodiff tape and the fusion IR."""


def postorder(roots, children):
    """Every node reachable from `roots`, each after all of its `children(node)`;
    nodes are identified by `id`, and visited in the order the iterables give."""
    order, seen = [], set()
    stack = [(r, False) for r in reversed(tuple(roots))]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for c in reversed(tuple(children(node))):
            if id(c) not in seen:
                stack.append((c, False))
    return order

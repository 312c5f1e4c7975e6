"""Graphs of modules (torch7 nngraph's ``gModule``): any DAG, each module with
its own explicit backward.

Calling a module on nodes builds the graph; ``Graph(inputs, outputs)`` makes
it a module::

    x = Input()
    h = Linear(8, 8)(x, name="proj")
    y = CAddTable()(h, x)            # a module on several nodes gets a tuple
    net = Graph(x, y)                # Graph([x1, x2], [y1, y2]) for several

Forward runs the nodes in topological order; backward runs them in reverse,
summing the gradients of a node that feeds several others. A module used at
several nodes (tied weights) keeps one state per use and accumulates its
parameter gradients over the uses.
"""

import itertools

from ._structure import add, all_none, describe, is_seq
from .containers import Composite, SelectTable, Uses, is_shape, trainable

__all__ = ["Graph", "Input", "Node"]

_creation = itertools.count()  # nodes are made after their parents: creation order is topological


def _check_name(name):
    if name is None:
        return None
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"a node's name must be a non-empty string without '.', got {name!r}")
    return name


class Node:
    """A value in a graph being built: ``module`` applied to the values of
    ``parents`` (one parent: its value; several, or a list of them: their
    tuple). Made by calling a module on nodes; ``node[i]`` picks entry ``i``
    of a tuple-valued node (a ``SelectTable(i)`` node).

    Attributes:
        module: the Module (None for an ``Input``).
        parents: the nodes whose values it takes.
        name: the name given (None: the graph names it from the class).
    """

    _is_graph_node = True  # what Module.__call__ looks for (the core does not import this file)

    def __init__(self, module, parents, name, packed):
        self.module = module
        self.parents = tuple(parents)
        self.name = _check_name(name)
        self._packed = packed  # the module takes the tuple of its parents' values
        self._order = next(_creation)

    def _grow(self, module, inputs, name):
        """The node for ``module(*inputs, name=name)`` (called by ``Module.__call__``)."""
        packed = len(inputs) != 1 or is_seq(inputs[0])
        args = tuple(inputs[0]) if len(inputs) == 1 and is_seq(inputs[0]) else tuple(inputs)
        others = [a for a in args if not isinstance(a, Node)]
        if others:  # a list, so that a None argument is caught too
            raise TypeError(
                f"{module!r}: cannot mix graph nodes and {type(others[0]).__name__} in one call "
                "(call a module on nodes to build a graph, on arrays to run it; a constant such as "
                "None cannot be a graph argument: leave it out or make it an Input)"
            )
        return Node(module, args, name, packed)

    grow = _grow  # the public name, for Module.__call__

    def __getitem__(self, index):
        return SelectTable(index)(self)

    def __iter__(self):
        raise TypeError("a graph Node cannot be unpacked or iterated; take its entries with node[i]")

    def __repr__(self):
        what = "Input" if self.module is None else repr(self.module).split("\n")[0]
        return f"Node({what}" + (f", name={self.name!r})" if self.name else ")")


class Input(Node):
    """A graph input: ``x = Input()`` (a placeholder; its value comes at forward).

    Args:
        name: optional name (default ``input_<i>``, ``i`` its place among the
            graph's inputs).
    """

    def __init__(self, name=None):
        super().__init__(None, (), name, False)


class Graph(Composite):
    """A module made of a DAG of modules (nngraph's ``gModule``).

    Args:
        inputs: an ``Input`` node, or a list of them (the graph then takes a
            tuple, one entry per input, in this order).
        outputs: a node, or a list of nodes (the graph then returns a tuple).

    Nodes are named by the ``name=`` given when calling the module, else
    ``<class>_<k>`` (``linear_0``, ``linear_1``, ``caddtable_0``; ``k``
    counts that class's modules in topological order; a further use of a
    module is ``linear_0@1``). ``children()``,
    ``named_parameters()`` and ``state_dict()`` use these names
    (``"proj.W"``); a module used at several nodes appears once, under its
    first node's name. Modules are listed in the order the nodes were made,
    so ``nnumpy.interop.load_torch_state_dict`` maps a PyTorch module whose
    layers are registered in the same order.

    Forward evaluates the nodes in topological order. Backward runs them in
    reverse, summing gradients where a node feeds several others, and skips
    a node whose gradient is None everywhere (None means zeros). An input that
    no gradient reaches (it only feeds integer inputs, e.g. indices) gets None.

    Raises ValueError at construction for an input the outputs do not depend
    on, a node that depends on an ``Input`` not among ``inputs`` (a node from
    another graph) and names used twice.

    Shape:
        Input: an array (one input) or a tuple. Output: likewise for the outputs.

    Example:
        >>> import numpy as np
        >>> from nnumpy import Graph, Input, Linear, ReLU, CAddTable
        >>> x = Input()
        >>> h = ReLU()(Linear(4, 4)(x, name="proj"))
        >>> net = Graph(x, CAddTable()(h, x))
        >>> net.forward(np.ones((2, 4), np.float32)).shape
        (2, 4)
        >>> list(net.state_dict())
        ['proj.W', 'proj.b']
    """

    def __init__(self, inputs, outputs):
        super().__init__()
        self._multi_in, self._multi_out = is_seq(inputs), is_seq(outputs)
        ins = list(inputs) if self._multi_in else [inputs]
        outs = list(outputs) if self._multi_out else [outputs]
        for what, nodes in (("inputs", ins), ("outputs", outs)):
            if not nodes:
                raise ValueError(f"Graph: expected at least one node in {what}, got none")
        bad = next((n for n in ins if not isinstance(n, Input)), None)
        if bad is not None:
            raise TypeError(f"Graph: inputs must be nodes made by nnumpy.Input(), got {bad!r}")
        bad = next((n for n in outs if not isinstance(n, Node)), None)
        if bad is not None:
            raise TypeError(f"Graph: outputs must be graph nodes, got {type(bad).__name__}")
        if len({id(n) for n in ins}) != len(ins):
            raise ValueError("Graph: an Input is listed twice in inputs")
        order = _ancestors(outs)
        names = _names(ins, order)
        reached = {id(n) for n in order}
        for i, node in enumerate(ins):
            if id(node) not in reached:
                raise ValueError(f"Graph: the outputs do not depend on input {i} ({names[id(node)]!r})")
        listed = {id(n) for n in ins}
        for node in order:
            if node.module is None and id(node) not in listed:
                users = [names[id(n)] for n in order if any(p is node for p in n.parents)]
                who = f"node {users[0]!r} depends on" if users else "an output is"
                raise ValueError(
                    f"Graph: {who} an Input that is not among this graph's inputs "
                    f"(a node from another graph?); inputs are {[names[id(n)] for n in ins]}"
                )
        body = [n for n in order if n.module is not None]
        position = {id(n): i for i, n in enumerate(ins + body)}
        # the plan, by positions (values are kept in a list: a deep copy of the graph stays consistent)
        self._steps = [(n.module, tuple(position[id(p)] for p in n.parents), n._packed, names[id(n)]) for n in body]
        self._n_inputs = len(ins)
        self._outputs = [position[id(n)] for n in outs]
        self._input_names = [names[id(n)] for n in ins]
        self._output_names = [names[id(n)] for n in outs]
        first = {}
        for module, _, _, name in self._steps:
            first.setdefault(id(module), (name, module))
        self._children = list(first.values())
        self._values = None

    def children(self):
        return list(self._children)

    def plan(self):
        """The graph as data (what exporters walk): a dict with ``inputs`` (the
        input names), ``steps`` (``(module, parents, packed, name)`` in
        topological order; ``parents`` are positions in inputs + steps,
        ``packed``: the module takes the tuple of its parents' values),
        ``outputs`` (positions) and ``multi_in`` / ``multi_out`` (tuples in / out)."""
        return {"inputs": list(self._input_names), "steps": list(self._steps), "outputs": list(self._outputs),
                "multi_in": self._multi_in, "multi_out": self._multi_out}

    # ------------------------------------------------------------ forward
    def updateOutput(self, input):
        n = self._n_inputs
        if self._multi_in:
            if not is_seq(input):
                raise TypeError(f"Graph: expected a tuple of {n} inputs {self._input_names}, got {describe(input)}")
            if len(input) != n:
                raise ValueError(
                    f"Graph: expected a tuple of {n} inputs {self._input_names}, got {len(input)}: {describe(input)}"
                )
            values = list(input)
        else:
            values = [input]
        self._check_shapes(input)  # every node's output_shape first: a shape error changes no node's state
        self._uses = Uses([step[0] for step in self._steps])
        for i, (module, parents, packed, name) in enumerate(self._steps):
            x = tuple(values[p] for p in parents) if packed else values[parents[0]]
            values.append(self._run(i, module, x, f"Graph node {name!r}"))
        self._uses.finish()
        self._values = values
        outputs = [values[p] for p in self._outputs]
        self.output = tuple(outputs) if self._multi_out else outputs[0]
        return self.output

    def output_shape(self, input_shape):
        """The outputs' shapes, node by node in topological order; None past a
        module that cannot tell (or for a tuple of the wrong length: forward says so)."""
        if self._multi_in:
            if is_shape(input_shape) or len(input_shape) != self._n_inputs:
                return None
            values = list(input_shape)
        else:
            values = [input_shape]
        for module, parents, packed, name in self._steps:
            x = tuple(values[p] for p in parents) if packed else values[parents[0]]
            out = self._child_shape(module, x, f"Graph node {name!r}")
            if out is None:
                return None
            values.append(out)
        outputs = [values[p] for p in self._outputs]
        return tuple(outputs) if self._multi_out else outputs[0]

    # ------------------------------------------------------------ backward
    def _backward(self, input, gradOutput, need_input_grad):
        self._check_backward(gradOutput)
        n = self._n_inputs
        grads = [None] * len(self._values)
        for p, g in zip(self._outputs, gradOutput if self._multi_out else (gradOutput,), strict=True):
            grads[p] = add(grads[p], g)
        # which nodes must compute their input gradient: those with a parent that
        # wants a gradient (an input, if the caller needs it, or a node on a path to parameters)
        wants = [need_input_grad] * n
        needs = []
        for module, parents, _, _ in self._steps:
            need = any(wants[p] for p in parents)
            needs.append(need)
            wants.append(need or trainable(module))
        for i in range(len(self._steps) - 1, -1, -1):
            module, parents, packed, name = self._steps[i]
            g, grads[n + i] = grads[n + i], None
            if all_none(g) or not wants[n + i]:
                continue
            x = tuple(self._values[p] for p in parents) if packed else self._values[parents[0]]
            gx = self._run_backward(i, module, x, g, needs[i], f"Graph node {name!r}")
            if not needs[i] or gx is None:
                continue
            if not packed:
                grads[parents[0]] = add(grads[parents[0]], gx)
                continue
            if not is_seq(gx) or len(gx) != len(parents):
                raise ValueError(
                    f"Graph node {name!r}: {module!r} took a tuple of {len(parents)} but returned gradInput "
                    f"{describe(gx)}; expected one entry per input"
                )
            for p, gp in zip(parents, gx, strict=True):
                grads[p] = add(grads[p], gp)
        gin = grads[:n]
        self.gradInput = (tuple(gin) if self._multi_in else gin[0]) if need_input_grad else None
        return self.gradInput

    # ------------------------------------------------------------ text
    def _repr_lines(self):
        lines = [f"({name}): Input" for name in self._input_names]
        names = self._input_names + [step[3] for step in self._steps]
        shown = set()
        for module, parents, packed, name in self._steps:
            text = (
                repr(module)
                if id(module) not in shown
                else f"{type(module).__name__}, shared with {self._owner(module)}"
            )
            shown.add(id(module))
            args = ", ".join(names[p] for p in parents)
            lines.append(f"({name}): {text} <- " + (f"({args})" if packed and len(parents) == 1 else args))
        outs = ", ".join(names[p] for p in self._outputs)
        lines.append("-> " + (f"({outs})" if self._multi_out else outs))
        return lines

    def _owner(self, module):
        return next(name for name, m in self._children if m is module)

    # ------------------------------------------------------------ configuration
    _children_from_config = True

    def get_config(self):
        """The graph as data (model files store it): ``inputs`` (their
        names), ``nodes`` (each ``{"module", "parents", "packed", "name"}`` in
        topological order; ``parents`` are positions in inputs + nodes,
        ``packed``: the module takes the tuple of its parents' values),
        ``outputs`` (positions) and ``multi_in`` / ``multi_out``. A module used
        at several nodes is the same object in each."""
        nodes = [
            {"module": m, "parents": list(parents), "packed": packed, "name": name}
            for m, parents, packed, name in self._steps
        ]
        return {"inputs": list(self._input_names), "nodes": nodes, "outputs": list(self._outputs),
                "multi_in": self._multi_in, "multi_out": self._multi_out}

    @classmethod
    def from_config(cls, config):
        """The graph ``get_config`` describes, built by calling each node's
        module on its parents' nodes, under the same names."""
        values = [Input(name) for name in config["inputs"]]
        for node in config["nodes"]:
            parents = [values[p] for p in node["parents"]]
            module = node["module"]
            if node["packed"]:
                values.append(module(*parents, name=node["name"]) if len(parents) != 1
                              else module([parents[0]], name=node["name"]))
            else:
                values.append(module(parents[0], name=node["name"]))
        inputs = values[: len(config["inputs"])]
        outputs = [values[p] for p in config["outputs"]]
        return cls(inputs if config["multi_in"] else inputs[0], outputs if config["multi_out"] else outputs[0])


def _ancestors(outputs):
    """Every node the outputs depend on (themselves included), in topological order."""
    seen, stack = {}, list(outputs)
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.parents)
    return sorted(seen.values(), key=lambda n: n._order)


def _names(inputs, order):
    """``{id(node): name}``: the names given, else ``input_<i>``, ``<class>_<k>``
    (``k`` counts that class's modules), or ``<first>@<j>`` for use ``j`` of a
    module that an earlier node named ``<first>`` uses too."""
    names, taken = {}, {}
    for node in list(inputs) + [n for n in order if n.module is not None]:
        if node.name is not None:
            if node.name in taken:
                raise ValueError(f"Graph: the name {node.name!r} is given to two nodes")
            taken[node.name] = node
            names[id(node)] = node.name
    counters = {}
    for i, node in enumerate(inputs):
        if id(node) not in names:
            names[id(node)] = _free(f"input_{i}", taken)
            taken[names[id(node)]] = node
    first, uses = {}, {}  # module -> the name of its first node; how many nodes use it so far
    for node in order:
        if node.module is None:
            continue
        if id(node) not in names and id(node.module) in first:  # another use of a shared module
            uses[id(node.module)] = k = uses.get(id(node.module), 0) + 1
            names[id(node)] = _free(f"{first[id(node.module)]}@{k}", taken)
            taken[names[id(node)]] = node
        elif id(node) not in names:
            base = type(node.module).__name__.lower()
            k = counters.get(base, 0)
            while f"{base}_{k}" in taken:
                k += 1
            counters[base] = k + 1
            names[id(node)] = f"{base}_{k}"
            taken[names[id(node)]] = node
        first.setdefault(id(node.module), names[id(node)])
    for node in order:  # an Input of another graph: named only for the error message
        names.setdefault(id(node), node.name or "an Input")
    return names


def _free(name, taken):
    k = 0
    candidate = name
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    return candidate

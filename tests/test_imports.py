"""How kvae's modules depend on each other, read from their source: no
circle (imports inside functions included), and one place for each way into
a model file."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kvae", "serving")


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files():
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def imports_of(path, modules):
    """The project modules that `path` imports anywhere in its body: for
    `from PACKAGE import NAME`, the submodule PACKAGE.NAME when there is one."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in modules
                else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph():
    files = {module_name(path): path for path in source_files()}
    return {name: imports_of(path, files) - {name} for name, path in files.items()}


def find_cycle(graph):
    """One circle of `graph` as a list of modules, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return trail[trail.index(target) :] + [target]
            if target not in state:
                cycle = visit(target, trail + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_modules_import_each_other_without_a_circle():
    graph = import_graph()
    assert {"kvae.loader", "kvae.presets", "kvae.hub", "kvae.zoo"} <= set(graph)
    assert "kvae.presets" in graph["kvae.loader"] and "kvae.loader" in graph["kvae.zoo"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    # the check finds a circle when there is one
    assert find_cycle({**graph, "kvae.presets": graph["kvae.presets"] | {"kvae.loader"}})


def calls_in(path):
    """The dotted names of the functions `path` calls (a.b.c(...) -> "a.b.c")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            parts, target = [], node.func
            while isinstance(target, ast.Attribute):
                parts.append(target.attr)
                target = target.value
            if isinstance(target, ast.Name):
                names.add(".".join([target.id, *reversed(parts)]))
    return names


def test_one_function_turns_a_spec_into_a_model():
    """Only kvae.saving opens a .keras file of kvae with Keras (kvae.features
    opens its Fashion-MNIST classifier, not a VAE), only kvae.loader builds a
    model from a preset's files; the zoo, evaluation, the Hub and the service
    go through kvae.load."""
    callers = {}
    for path in source_files():
        for name in calls_in(path):
            callers.setdefault(name, set()).add(module_name(path))
    assert callers["keras.saving.load_model"] == {"kvae.saving", "kvae.features"}
    assert callers["presets.load"] == {"kvae.loader"}
    assert "kvae.load" in callers and callers["kvae.load"] >= {"serving.model"}
    assert callers["loader.load"] >= {"kvae.zoo", "kvae.evaluate"}

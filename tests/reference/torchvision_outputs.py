# Computes the torchvision reference outputs embedded in tests/test_models.cpp (run with
# /usr/bin/python3 and torchvision 0.14); tensors are filled with the same hash as the test.
M = 0xFFFFFFFFFFFFFFFF
def mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
    return x ^ (x >> 31)
def hval(k, i):  # uniform in [-1, 1)
    return 2.0 * ((mix64(k * 1000003 + i) >> 11) * 2.0**-53) - 1.0
import math, torch, torch.nn as nn, torchvision
torch.set_default_dtype(torch.float64)
exec(open(__file__.replace("torchvision_outputs.py", "torchvision_state_dicts.py")).read().split("def dump")[0])  # ResNet20 class

def fill(m):
    sd = m.state_dict()
    new = {}
    for k, (name, t) in enumerate(sd.items()):
        if name.endswith("num_batches_tracked"):
            new[name] = t; continue
        n = t.numel()
        s = torch.tensor([hval(k, i) for i in range(n)], dtype=torch.float64).reshape(t.shape)
        if t.dim() >= 2:
            v = s * math.sqrt(6.0 / (n // t.shape[0]))
        elif name.endswith("running_var"):
            v = 0.75 + 0.25 * s
        elif name.endswith("weight"):
            v = 1 + 0.2 * s
        else:  # bias, running_mean
            v = 0.1 * s
        new[name] = v
    m.load_state_dict(new)

def inp(shape):
    n = math.prod(shape)
    return torch.tensor([hval(999, i) for i in range(n)]).reshape(shape)

def run(name, m, shape):
    m = m.double(); fill(m)
    x = inp(shape)
    m.eval()
    with torch.no_grad(): e = m(x)
    m.train()
    with torch.no_grad(): t = m(x)
    for tag, y in (("Eval", e), ("Train", t)):
        vals = ", ".join(repr(float(v)) for v in y.flatten())
        print(f"// {name} {tag} {list(y.shape)}\n{{{vals}}}")

torch.manual_seed(0)
run("resnet20 in1 c10 [2,1,28,28]", ResNet20(1, 10), (2, 1, 28, 28))
run("resnet18 in3 c10 [2,3,32,32]", torchvision.models.resnet18(num_classes=10), (2, 3, 32, 32))
run("mobilenet_v2 in3 c10 dropout0 [2,3,32,32]", torchvision.models.mobilenet_v2(num_classes=10, dropout=0.0), (2, 3, 32, 32))

# Prints the torchvision state-dict names and shapes embedded in tests/torchvision_state_dicts.h
# (run with /usr/bin/python3 and torchvision 0.14).
import torch, torch.nn as nn, torchvision
from torchvision.models.resnet import BasicBlock

class ResNet20(nn.Module):
    def __init__(self, in_ch=3, num_classes=10):
        super().__init__()
        self.inplanes = 16
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, 3, 1)
        self.layer2 = self._make_layer(32, 3, 2)
        self.layer3 = self._make_layer(64, 3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
    def _make_layer(self, planes, blocks, stride):
        ds = None
        if stride != 1 or self.inplanes != planes:
            ds = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, ds)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(planes, planes))
        return nn.Sequential(*layers)
    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))

def dump(name, m):
    sd = m.state_dict()
    entries = [k + ":" + ",".join(str(d) for d in v.shape) for k, v in sd.items()]
    nparams = sum(p.numel() for p in m.parameters())
    lines = []
    cur = ""
    for e in entries:
        if cur and len(cur) + 1 + len(e) > 94:
            lines.append(cur); cur = e
        else:
            cur = (cur + " " + e) if cur else e
    lines.append(cur)
    print(f"// {name}: {len(entries)} entries, {nparams} parameters")
    print(f'const char* const k{name}StateDict = R"(')
    for l in lines: print(l)
    print(')";')
    return nparams

dump("Resnet20", ResNet20(3, 10))
dump("Resnet18", torchvision.models.resnet18())
dump("MobilenetV2", torchvision.models.mobilenet_v2())
dump("Resnet34", torchvision.models.resnet34())
for in_ch, nc in [(1, 10), (3, 10)]:
    print("resnet20", in_ch, nc, sum(p.numel() for p in ResNet20(in_ch, nc).parameters()))
    m = torchvision.models.resnet18(num_classes=nc); m.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
    print("resnet18", in_ch, nc, sum(p.numel() for p in m.parameters()))
    m = torchvision.models.mobilenet_v2(num_classes=nc); m.features[0][0] = nn.Conv2d(in_ch, 32, 3, 2, 1, bias=False)
    print("mobilenet_v2", in_ch, nc, sum(p.numel() for p in m.parameters()))
    m = torchvision.models.resnet34(num_classes=nc); m.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
    print("resnet34", in_ch, nc, sum(p.numel() for p in m.parameters()))

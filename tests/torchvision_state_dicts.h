#pragma once
// torchvision 0.14's state-dict names and shapes (3 input channels, 1000 classes), embedded so
// tests need no Python. Regenerate with tests/reference/torchvision_state_dicts.py.
// ---- expected state dicts, generated with torchvision 0.14 (3 input channels, 1000 classes):
//   sd = torchvision.models.resnet18().state_dict()
//   " ".join(k + ":" + ",".join(map(str, v.shape)) for k, v in sd.items())
// A scalar (num_batches_tracked) has an empty shape after the colon.
inline const char* const kResnet18StateDict = R"(
conv1.weight:64,3,7,7 bn1.weight:64 bn1.bias:64 bn1.running_mean:64 bn1.running_var:64
bn1.num_batches_tracked: layer1.0.conv1.weight:64,64,3,3 layer1.0.bn1.weight:64
layer1.0.bn1.bias:64 layer1.0.bn1.running_mean:64 layer1.0.bn1.running_var:64
layer1.0.bn1.num_batches_tracked: layer1.0.conv2.weight:64,64,3,3 layer1.0.bn2.weight:64
layer1.0.bn2.bias:64 layer1.0.bn2.running_mean:64 layer1.0.bn2.running_var:64
layer1.0.bn2.num_batches_tracked: layer1.1.conv1.weight:64,64,3,3 layer1.1.bn1.weight:64
layer1.1.bn1.bias:64 layer1.1.bn1.running_mean:64 layer1.1.bn1.running_var:64
layer1.1.bn1.num_batches_tracked: layer1.1.conv2.weight:64,64,3,3 layer1.1.bn2.weight:64
layer1.1.bn2.bias:64 layer1.1.bn2.running_mean:64 layer1.1.bn2.running_var:64
layer1.1.bn2.num_batches_tracked: layer2.0.conv1.weight:128,64,3,3 layer2.0.bn1.weight:128
layer2.0.bn1.bias:128 layer2.0.bn1.running_mean:128 layer2.0.bn1.running_var:128
layer2.0.bn1.num_batches_tracked: layer2.0.conv2.weight:128,128,3,3 layer2.0.bn2.weight:128
layer2.0.bn2.bias:128 layer2.0.bn2.running_mean:128 layer2.0.bn2.running_var:128
layer2.0.bn2.num_batches_tracked: layer2.0.downsample.0.weight:128,64,1,1
layer2.0.downsample.1.weight:128 layer2.0.downsample.1.bias:128
layer2.0.downsample.1.running_mean:128 layer2.0.downsample.1.running_var:128
layer2.0.downsample.1.num_batches_tracked: layer2.1.conv1.weight:128,128,3,3
layer2.1.bn1.weight:128 layer2.1.bn1.bias:128 layer2.1.bn1.running_mean:128
layer2.1.bn1.running_var:128 layer2.1.bn1.num_batches_tracked:
layer2.1.conv2.weight:128,128,3,3 layer2.1.bn2.weight:128 layer2.1.bn2.bias:128
layer2.1.bn2.running_mean:128 layer2.1.bn2.running_var:128 layer2.1.bn2.num_batches_tracked:
layer3.0.conv1.weight:256,128,3,3 layer3.0.bn1.weight:256 layer3.0.bn1.bias:256
layer3.0.bn1.running_mean:256 layer3.0.bn1.running_var:256 layer3.0.bn1.num_batches_tracked:
layer3.0.conv2.weight:256,256,3,3 layer3.0.bn2.weight:256 layer3.0.bn2.bias:256
layer3.0.bn2.running_mean:256 layer3.0.bn2.running_var:256 layer3.0.bn2.num_batches_tracked:
layer3.0.downsample.0.weight:256,128,1,1 layer3.0.downsample.1.weight:256
layer3.0.downsample.1.bias:256 layer3.0.downsample.1.running_mean:256
layer3.0.downsample.1.running_var:256 layer3.0.downsample.1.num_batches_tracked:
layer3.1.conv1.weight:256,256,3,3 layer3.1.bn1.weight:256 layer3.1.bn1.bias:256
layer3.1.bn1.running_mean:256 layer3.1.bn1.running_var:256 layer3.1.bn1.num_batches_tracked:
layer3.1.conv2.weight:256,256,3,3 layer3.1.bn2.weight:256 layer3.1.bn2.bias:256
layer3.1.bn2.running_mean:256 layer3.1.bn2.running_var:256 layer3.1.bn2.num_batches_tracked:
layer4.0.conv1.weight:512,256,3,3 layer4.0.bn1.weight:512 layer4.0.bn1.bias:512
layer4.0.bn1.running_mean:512 layer4.0.bn1.running_var:512 layer4.0.bn1.num_batches_tracked:
layer4.0.conv2.weight:512,512,3,3 layer4.0.bn2.weight:512 layer4.0.bn2.bias:512
layer4.0.bn2.running_mean:512 layer4.0.bn2.running_var:512 layer4.0.bn2.num_batches_tracked:
layer4.0.downsample.0.weight:512,256,1,1 layer4.0.downsample.1.weight:512
layer4.0.downsample.1.bias:512 layer4.0.downsample.1.running_mean:512
layer4.0.downsample.1.running_var:512 layer4.0.downsample.1.num_batches_tracked:
layer4.1.conv1.weight:512,512,3,3 layer4.1.bn1.weight:512 layer4.1.bn1.bias:512
layer4.1.bn1.running_mean:512 layer4.1.bn1.running_var:512 layer4.1.bn1.num_batches_tracked:
layer4.1.conv2.weight:512,512,3,3 layer4.1.bn2.weight:512 layer4.1.bn2.bias:512
layer4.1.bn2.running_mean:512 layer4.1.bn2.running_var:512 layer4.1.bn2.num_batches_tracked:
fc.weight:1000,512 fc.bias:1000
)";
inline const char* const kMobilenetV2StateDict = R"(
features.0.0.weight:32,3,3,3 features.0.1.weight:32 features.0.1.bias:32
features.0.1.running_mean:32 features.0.1.running_var:32 features.0.1.num_batches_tracked:
features.1.conv.0.0.weight:32,1,3,3 features.1.conv.0.1.weight:32 features.1.conv.0.1.bias:32
features.1.conv.0.1.running_mean:32 features.1.conv.0.1.running_var:32
features.1.conv.0.1.num_batches_tracked: features.1.conv.1.weight:16,32,1,1
features.1.conv.2.weight:16 features.1.conv.2.bias:16 features.1.conv.2.running_mean:16
features.1.conv.2.running_var:16 features.1.conv.2.num_batches_tracked:
features.2.conv.0.0.weight:96,16,1,1 features.2.conv.0.1.weight:96 features.2.conv.0.1.bias:96
features.2.conv.0.1.running_mean:96 features.2.conv.0.1.running_var:96
features.2.conv.0.1.num_batches_tracked: features.2.conv.1.0.weight:96,1,3,3
features.2.conv.1.1.weight:96 features.2.conv.1.1.bias:96 features.2.conv.1.1.running_mean:96
features.2.conv.1.1.running_var:96 features.2.conv.1.1.num_batches_tracked:
features.2.conv.2.weight:24,96,1,1 features.2.conv.3.weight:24 features.2.conv.3.bias:24
features.2.conv.3.running_mean:24 features.2.conv.3.running_var:24
features.2.conv.3.num_batches_tracked: features.3.conv.0.0.weight:144,24,1,1
features.3.conv.0.1.weight:144 features.3.conv.0.1.bias:144
features.3.conv.0.1.running_mean:144 features.3.conv.0.1.running_var:144
features.3.conv.0.1.num_batches_tracked: features.3.conv.1.0.weight:144,1,3,3
features.3.conv.1.1.weight:144 features.3.conv.1.1.bias:144
features.3.conv.1.1.running_mean:144 features.3.conv.1.1.running_var:144
features.3.conv.1.1.num_batches_tracked: features.3.conv.2.weight:24,144,1,1
features.3.conv.3.weight:24 features.3.conv.3.bias:24 features.3.conv.3.running_mean:24
features.3.conv.3.running_var:24 features.3.conv.3.num_batches_tracked:
features.4.conv.0.0.weight:144,24,1,1 features.4.conv.0.1.weight:144
features.4.conv.0.1.bias:144 features.4.conv.0.1.running_mean:144
features.4.conv.0.1.running_var:144 features.4.conv.0.1.num_batches_tracked:
features.4.conv.1.0.weight:144,1,3,3 features.4.conv.1.1.weight:144
features.4.conv.1.1.bias:144 features.4.conv.1.1.running_mean:144
features.4.conv.1.1.running_var:144 features.4.conv.1.1.num_batches_tracked:
features.4.conv.2.weight:32,144,1,1 features.4.conv.3.weight:32 features.4.conv.3.bias:32
features.4.conv.3.running_mean:32 features.4.conv.3.running_var:32
features.4.conv.3.num_batches_tracked: features.5.conv.0.0.weight:192,32,1,1
features.5.conv.0.1.weight:192 features.5.conv.0.1.bias:192
features.5.conv.0.1.running_mean:192 features.5.conv.0.1.running_var:192
features.5.conv.0.1.num_batches_tracked: features.5.conv.1.0.weight:192,1,3,3
features.5.conv.1.1.weight:192 features.5.conv.1.1.bias:192
features.5.conv.1.1.running_mean:192 features.5.conv.1.1.running_var:192
features.5.conv.1.1.num_batches_tracked: features.5.conv.2.weight:32,192,1,1
features.5.conv.3.weight:32 features.5.conv.3.bias:32 features.5.conv.3.running_mean:32
features.5.conv.3.running_var:32 features.5.conv.3.num_batches_tracked:
features.6.conv.0.0.weight:192,32,1,1 features.6.conv.0.1.weight:192
features.6.conv.0.1.bias:192 features.6.conv.0.1.running_mean:192
features.6.conv.0.1.running_var:192 features.6.conv.0.1.num_batches_tracked:
features.6.conv.1.0.weight:192,1,3,3 features.6.conv.1.1.weight:192
features.6.conv.1.1.bias:192 features.6.conv.1.1.running_mean:192
features.6.conv.1.1.running_var:192 features.6.conv.1.1.num_batches_tracked:
features.6.conv.2.weight:32,192,1,1 features.6.conv.3.weight:32 features.6.conv.3.bias:32
features.6.conv.3.running_mean:32 features.6.conv.3.running_var:32
features.6.conv.3.num_batches_tracked: features.7.conv.0.0.weight:192,32,1,1
features.7.conv.0.1.weight:192 features.7.conv.0.1.bias:192
features.7.conv.0.1.running_mean:192 features.7.conv.0.1.running_var:192
features.7.conv.0.1.num_batches_tracked: features.7.conv.1.0.weight:192,1,3,3
features.7.conv.1.1.weight:192 features.7.conv.1.1.bias:192
features.7.conv.1.1.running_mean:192 features.7.conv.1.1.running_var:192
features.7.conv.1.1.num_batches_tracked: features.7.conv.2.weight:64,192,1,1
features.7.conv.3.weight:64 features.7.conv.3.bias:64 features.7.conv.3.running_mean:64
features.7.conv.3.running_var:64 features.7.conv.3.num_batches_tracked:
features.8.conv.0.0.weight:384,64,1,1 features.8.conv.0.1.weight:384
features.8.conv.0.1.bias:384 features.8.conv.0.1.running_mean:384
features.8.conv.0.1.running_var:384 features.8.conv.0.1.num_batches_tracked:
features.8.conv.1.0.weight:384,1,3,3 features.8.conv.1.1.weight:384
features.8.conv.1.1.bias:384 features.8.conv.1.1.running_mean:384
features.8.conv.1.1.running_var:384 features.8.conv.1.1.num_batches_tracked:
features.8.conv.2.weight:64,384,1,1 features.8.conv.3.weight:64 features.8.conv.3.bias:64
features.8.conv.3.running_mean:64 features.8.conv.3.running_var:64
features.8.conv.3.num_batches_tracked: features.9.conv.0.0.weight:384,64,1,1
features.9.conv.0.1.weight:384 features.9.conv.0.1.bias:384
features.9.conv.0.1.running_mean:384 features.9.conv.0.1.running_var:384
features.9.conv.0.1.num_batches_tracked: features.9.conv.1.0.weight:384,1,3,3
features.9.conv.1.1.weight:384 features.9.conv.1.1.bias:384
features.9.conv.1.1.running_mean:384 features.9.conv.1.1.running_var:384
features.9.conv.1.1.num_batches_tracked: features.9.conv.2.weight:64,384,1,1
features.9.conv.3.weight:64 features.9.conv.3.bias:64 features.9.conv.3.running_mean:64
features.9.conv.3.running_var:64 features.9.conv.3.num_batches_tracked:
features.10.conv.0.0.weight:384,64,1,1 features.10.conv.0.1.weight:384
features.10.conv.0.1.bias:384 features.10.conv.0.1.running_mean:384
features.10.conv.0.1.running_var:384 features.10.conv.0.1.num_batches_tracked:
features.10.conv.1.0.weight:384,1,3,3 features.10.conv.1.1.weight:384
features.10.conv.1.1.bias:384 features.10.conv.1.1.running_mean:384
features.10.conv.1.1.running_var:384 features.10.conv.1.1.num_batches_tracked:
features.10.conv.2.weight:64,384,1,1 features.10.conv.3.weight:64 features.10.conv.3.bias:64
features.10.conv.3.running_mean:64 features.10.conv.3.running_var:64
features.10.conv.3.num_batches_tracked: features.11.conv.0.0.weight:384,64,1,1
features.11.conv.0.1.weight:384 features.11.conv.0.1.bias:384
features.11.conv.0.1.running_mean:384 features.11.conv.0.1.running_var:384
features.11.conv.0.1.num_batches_tracked: features.11.conv.1.0.weight:384,1,3,3
features.11.conv.1.1.weight:384 features.11.conv.1.1.bias:384
features.11.conv.1.1.running_mean:384 features.11.conv.1.1.running_var:384
features.11.conv.1.1.num_batches_tracked: features.11.conv.2.weight:96,384,1,1
features.11.conv.3.weight:96 features.11.conv.3.bias:96 features.11.conv.3.running_mean:96
features.11.conv.3.running_var:96 features.11.conv.3.num_batches_tracked:
features.12.conv.0.0.weight:576,96,1,1 features.12.conv.0.1.weight:576
features.12.conv.0.1.bias:576 features.12.conv.0.1.running_mean:576
features.12.conv.0.1.running_var:576 features.12.conv.0.1.num_batches_tracked:
features.12.conv.1.0.weight:576,1,3,3 features.12.conv.1.1.weight:576
features.12.conv.1.1.bias:576 features.12.conv.1.1.running_mean:576
features.12.conv.1.1.running_var:576 features.12.conv.1.1.num_batches_tracked:
features.12.conv.2.weight:96,576,1,1 features.12.conv.3.weight:96 features.12.conv.3.bias:96
features.12.conv.3.running_mean:96 features.12.conv.3.running_var:96
features.12.conv.3.num_batches_tracked: features.13.conv.0.0.weight:576,96,1,1
features.13.conv.0.1.weight:576 features.13.conv.0.1.bias:576
features.13.conv.0.1.running_mean:576 features.13.conv.0.1.running_var:576
features.13.conv.0.1.num_batches_tracked: features.13.conv.1.0.weight:576,1,3,3
features.13.conv.1.1.weight:576 features.13.conv.1.1.bias:576
features.13.conv.1.1.running_mean:576 features.13.conv.1.1.running_var:576
features.13.conv.1.1.num_batches_tracked: features.13.conv.2.weight:96,576,1,1
features.13.conv.3.weight:96 features.13.conv.3.bias:96 features.13.conv.3.running_mean:96
features.13.conv.3.running_var:96 features.13.conv.3.num_batches_tracked:
features.14.conv.0.0.weight:576,96,1,1 features.14.conv.0.1.weight:576
features.14.conv.0.1.bias:576 features.14.conv.0.1.running_mean:576
features.14.conv.0.1.running_var:576 features.14.conv.0.1.num_batches_tracked:
features.14.conv.1.0.weight:576,1,3,3 features.14.conv.1.1.weight:576
features.14.conv.1.1.bias:576 features.14.conv.1.1.running_mean:576
features.14.conv.1.1.running_var:576 features.14.conv.1.1.num_batches_tracked:
features.14.conv.2.weight:160,576,1,1 features.14.conv.3.weight:160
features.14.conv.3.bias:160 features.14.conv.3.running_mean:160
features.14.conv.3.running_var:160 features.14.conv.3.num_batches_tracked:
features.15.conv.0.0.weight:960,160,1,1 features.15.conv.0.1.weight:960
features.15.conv.0.1.bias:960 features.15.conv.0.1.running_mean:960
features.15.conv.0.1.running_var:960 features.15.conv.0.1.num_batches_tracked:
features.15.conv.1.0.weight:960,1,3,3 features.15.conv.1.1.weight:960
features.15.conv.1.1.bias:960 features.15.conv.1.1.running_mean:960
features.15.conv.1.1.running_var:960 features.15.conv.1.1.num_batches_tracked:
features.15.conv.2.weight:160,960,1,1 features.15.conv.3.weight:160
features.15.conv.3.bias:160 features.15.conv.3.running_mean:160
features.15.conv.3.running_var:160 features.15.conv.3.num_batches_tracked:
features.16.conv.0.0.weight:960,160,1,1 features.16.conv.0.1.weight:960
features.16.conv.0.1.bias:960 features.16.conv.0.1.running_mean:960
features.16.conv.0.1.running_var:960 features.16.conv.0.1.num_batches_tracked:
features.16.conv.1.0.weight:960,1,3,3 features.16.conv.1.1.weight:960
features.16.conv.1.1.bias:960 features.16.conv.1.1.running_mean:960
features.16.conv.1.1.running_var:960 features.16.conv.1.1.num_batches_tracked:
features.16.conv.2.weight:160,960,1,1 features.16.conv.3.weight:160
features.16.conv.3.bias:160 features.16.conv.3.running_mean:160
features.16.conv.3.running_var:160 features.16.conv.3.num_batches_tracked:
features.17.conv.0.0.weight:960,160,1,1 features.17.conv.0.1.weight:960
features.17.conv.0.1.bias:960 features.17.conv.0.1.running_mean:960
features.17.conv.0.1.running_var:960 features.17.conv.0.1.num_batches_tracked:
features.17.conv.1.0.weight:960,1,3,3 features.17.conv.1.1.weight:960
features.17.conv.1.1.bias:960 features.17.conv.1.1.running_mean:960
features.17.conv.1.1.running_var:960 features.17.conv.1.1.num_batches_tracked:
features.17.conv.2.weight:320,960,1,1 features.17.conv.3.weight:320
features.17.conv.3.bias:320 features.17.conv.3.running_mean:320
features.17.conv.3.running_var:320 features.17.conv.3.num_batches_tracked:
features.18.0.weight:1280,320,1,1 features.18.1.weight:1280 features.18.1.bias:1280
features.18.1.running_mean:1280 features.18.1.running_var:1280
features.18.1.num_batches_tracked: classifier.1.weight:1000,1280 classifier.1.bias:1000
)";
inline const char* const kResnet34StateDict = R"(
conv1.weight:64,3,7,7 bn1.weight:64 bn1.bias:64 bn1.running_mean:64 bn1.running_var:64
bn1.num_batches_tracked: layer1.0.conv1.weight:64,64,3,3 layer1.0.bn1.weight:64
layer1.0.bn1.bias:64 layer1.0.bn1.running_mean:64 layer1.0.bn1.running_var:64
layer1.0.bn1.num_batches_tracked: layer1.0.conv2.weight:64,64,3,3 layer1.0.bn2.weight:64
layer1.0.bn2.bias:64 layer1.0.bn2.running_mean:64 layer1.0.bn2.running_var:64
layer1.0.bn2.num_batches_tracked: layer1.1.conv1.weight:64,64,3,3 layer1.1.bn1.weight:64
layer1.1.bn1.bias:64 layer1.1.bn1.running_mean:64 layer1.1.bn1.running_var:64
layer1.1.bn1.num_batches_tracked: layer1.1.conv2.weight:64,64,3,3 layer1.1.bn2.weight:64
layer1.1.bn2.bias:64 layer1.1.bn2.running_mean:64 layer1.1.bn2.running_var:64
layer1.1.bn2.num_batches_tracked: layer1.2.conv1.weight:64,64,3,3 layer1.2.bn1.weight:64
layer1.2.bn1.bias:64 layer1.2.bn1.running_mean:64 layer1.2.bn1.running_var:64
layer1.2.bn1.num_batches_tracked: layer1.2.conv2.weight:64,64,3,3 layer1.2.bn2.weight:64
layer1.2.bn2.bias:64 layer1.2.bn2.running_mean:64 layer1.2.bn2.running_var:64
layer1.2.bn2.num_batches_tracked: layer2.0.conv1.weight:128,64,3,3 layer2.0.bn1.weight:128
layer2.0.bn1.bias:128 layer2.0.bn1.running_mean:128 layer2.0.bn1.running_var:128
layer2.0.bn1.num_batches_tracked: layer2.0.conv2.weight:128,128,3,3 layer2.0.bn2.weight:128
layer2.0.bn2.bias:128 layer2.0.bn2.running_mean:128 layer2.0.bn2.running_var:128
layer2.0.bn2.num_batches_tracked: layer2.0.downsample.0.weight:128,64,1,1
layer2.0.downsample.1.weight:128 layer2.0.downsample.1.bias:128
layer2.0.downsample.1.running_mean:128 layer2.0.downsample.1.running_var:128
layer2.0.downsample.1.num_batches_tracked: layer2.1.conv1.weight:128,128,3,3
layer2.1.bn1.weight:128 layer2.1.bn1.bias:128 layer2.1.bn1.running_mean:128
layer2.1.bn1.running_var:128 layer2.1.bn1.num_batches_tracked: layer2.1.conv2.weight:128,128,3,3
layer2.1.bn2.weight:128 layer2.1.bn2.bias:128 layer2.1.bn2.running_mean:128
layer2.1.bn2.running_var:128 layer2.1.bn2.num_batches_tracked: layer2.2.conv1.weight:128,128,3,3
layer2.2.bn1.weight:128 layer2.2.bn1.bias:128 layer2.2.bn1.running_mean:128
layer2.2.bn1.running_var:128 layer2.2.bn1.num_batches_tracked: layer2.2.conv2.weight:128,128,3,3
layer2.2.bn2.weight:128 layer2.2.bn2.bias:128 layer2.2.bn2.running_mean:128
layer2.2.bn2.running_var:128 layer2.2.bn2.num_batches_tracked: layer2.3.conv1.weight:128,128,3,3
layer2.3.bn1.weight:128 layer2.3.bn1.bias:128 layer2.3.bn1.running_mean:128
layer2.3.bn1.running_var:128 layer2.3.bn1.num_batches_tracked: layer2.3.conv2.weight:128,128,3,3
layer2.3.bn2.weight:128 layer2.3.bn2.bias:128 layer2.3.bn2.running_mean:128
layer2.3.bn2.running_var:128 layer2.3.bn2.num_batches_tracked: layer3.0.conv1.weight:256,128,3,3
layer3.0.bn1.weight:256 layer3.0.bn1.bias:256 layer3.0.bn1.running_mean:256
layer3.0.bn1.running_var:256 layer3.0.bn1.num_batches_tracked: layer3.0.conv2.weight:256,256,3,3
layer3.0.bn2.weight:256 layer3.0.bn2.bias:256 layer3.0.bn2.running_mean:256
layer3.0.bn2.running_var:256 layer3.0.bn2.num_batches_tracked:
layer3.0.downsample.0.weight:256,128,1,1 layer3.0.downsample.1.weight:256
layer3.0.downsample.1.bias:256 layer3.0.downsample.1.running_mean:256
layer3.0.downsample.1.running_var:256 layer3.0.downsample.1.num_batches_tracked:
layer3.1.conv1.weight:256,256,3,3 layer3.1.bn1.weight:256 layer3.1.bn1.bias:256
layer3.1.bn1.running_mean:256 layer3.1.bn1.running_var:256 layer3.1.bn1.num_batches_tracked:
layer3.1.conv2.weight:256,256,3,3 layer3.1.bn2.weight:256 layer3.1.bn2.bias:256
layer3.1.bn2.running_mean:256 layer3.1.bn2.running_var:256 layer3.1.bn2.num_batches_tracked:
layer3.2.conv1.weight:256,256,3,3 layer3.2.bn1.weight:256 layer3.2.bn1.bias:256
layer3.2.bn1.running_mean:256 layer3.2.bn1.running_var:256 layer3.2.bn1.num_batches_tracked:
layer3.2.conv2.weight:256,256,3,3 layer3.2.bn2.weight:256 layer3.2.bn2.bias:256
layer3.2.bn2.running_mean:256 layer3.2.bn2.running_var:256 layer3.2.bn2.num_batches_tracked:
layer3.3.conv1.weight:256,256,3,3 layer3.3.bn1.weight:256 layer3.3.bn1.bias:256
layer3.3.bn1.running_mean:256 layer3.3.bn1.running_var:256 layer3.3.bn1.num_batches_tracked:
layer3.3.conv2.weight:256,256,3,3 layer3.3.bn2.weight:256 layer3.3.bn2.bias:256
layer3.3.bn2.running_mean:256 layer3.3.bn2.running_var:256 layer3.3.bn2.num_batches_tracked:
layer3.4.conv1.weight:256,256,3,3 layer3.4.bn1.weight:256 layer3.4.bn1.bias:256
layer3.4.bn1.running_mean:256 layer3.4.bn1.running_var:256 layer3.4.bn1.num_batches_tracked:
layer3.4.conv2.weight:256,256,3,3 layer3.4.bn2.weight:256 layer3.4.bn2.bias:256
layer3.4.bn2.running_mean:256 layer3.4.bn2.running_var:256 layer3.4.bn2.num_batches_tracked:
layer3.5.conv1.weight:256,256,3,3 layer3.5.bn1.weight:256 layer3.5.bn1.bias:256
layer3.5.bn1.running_mean:256 layer3.5.bn1.running_var:256 layer3.5.bn1.num_batches_tracked:
layer3.5.conv2.weight:256,256,3,3 layer3.5.bn2.weight:256 layer3.5.bn2.bias:256
layer3.5.bn2.running_mean:256 layer3.5.bn2.running_var:256 layer3.5.bn2.num_batches_tracked:
layer4.0.conv1.weight:512,256,3,3 layer4.0.bn1.weight:512 layer4.0.bn1.bias:512
layer4.0.bn1.running_mean:512 layer4.0.bn1.running_var:512 layer4.0.bn1.num_batches_tracked:
layer4.0.conv2.weight:512,512,3,3 layer4.0.bn2.weight:512 layer4.0.bn2.bias:512
layer4.0.bn2.running_mean:512 layer4.0.bn2.running_var:512 layer4.0.bn2.num_batches_tracked:
layer4.0.downsample.0.weight:512,256,1,1 layer4.0.downsample.1.weight:512
layer4.0.downsample.1.bias:512 layer4.0.downsample.1.running_mean:512
layer4.0.downsample.1.running_var:512 layer4.0.downsample.1.num_batches_tracked:
layer4.1.conv1.weight:512,512,3,3 layer4.1.bn1.weight:512 layer4.1.bn1.bias:512
layer4.1.bn1.running_mean:512 layer4.1.bn1.running_var:512 layer4.1.bn1.num_batches_tracked:
layer4.1.conv2.weight:512,512,3,3 layer4.1.bn2.weight:512 layer4.1.bn2.bias:512
layer4.1.bn2.running_mean:512 layer4.1.bn2.running_var:512 layer4.1.bn2.num_batches_tracked:
layer4.2.conv1.weight:512,512,3,3 layer4.2.bn1.weight:512 layer4.2.bn1.bias:512
layer4.2.bn1.running_mean:512 layer4.2.bn1.running_var:512 layer4.2.bn1.num_batches_tracked:
layer4.2.conv2.weight:512,512,3,3 layer4.2.bn2.weight:512 layer4.2.bn2.bias:512
layer4.2.bn2.running_mean:512 layer4.2.bn2.running_var:512 layer4.2.bn2.num_batches_tracked:
fc.weight:1000,512 fc.bias:1000
)";

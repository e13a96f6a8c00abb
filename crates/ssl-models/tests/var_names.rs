//! Variable names pinned to torchvision's and lightly's `state_dict` keys, so that weights
//! exported from PyTorch load with `VarStore::load`.

use ssl_models::{ProjectionHead, ProjectionHeadConfig, ResNet, ResNetConfig};
use tch::{nn, Device};

fn names(vs: &nn::VarStore) -> Vec<String> {
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    names
}

#[test]
fn resnet18_names_match_torchvision_without_fc() {
    let vs = nn::VarStore::new(Device::Cpu);
    ResNet::new(&vs.root(), &ResNetConfig::resnet18()).unwrap();
    let names = names(&vs);
    // torchvision's resnet18 state_dict has 122 keys; minus fc.weight, fc.bias and the 20
    // BatchNorm num_batches_tracked buffers (tch keeps no such counter) that leaves 100.
    assert_eq!(names.len(), 100);
    for want in [
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer1.1.bn2.bias",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_mean",
        "layer4.1.conv2.weight",
    ] {
        assert!(names.iter().any(|n| n == want), "missing {want}");
    }
    assert!(!names.iter().any(|n| n.starts_with("layer1.0.downsample")));
}

#[test]
fn simclr_head_names_match_a_sequential_of_linear_bn_relu_linear() {
    let vs = nn::VarStore::new(Device::Cpu);
    ProjectionHead::new(&vs.root(), &ProjectionHeadConfig::simclr(16)).unwrap();
    assert_eq!(
        names(&vs),
        [
            "layers.0.weight",
            "layers.1.bias",
            "layers.1.running_mean",
            "layers.1.running_var",
            "layers.1.weight",
            "layers.3.bias",
            "layers.3.weight"
        ]
    );
}

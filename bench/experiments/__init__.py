"""Small-scale reproductions of the ResNet papers' experiments on scikit-learn's digits."""

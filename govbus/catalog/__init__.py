"""The resource catalog (政务信息资源目录): the source of truth everything else derives from."""

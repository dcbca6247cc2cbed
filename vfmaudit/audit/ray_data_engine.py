"""placeholder"""
def run(*a):
    raise NotImplementedError

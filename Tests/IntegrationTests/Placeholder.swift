// Real-stack tests live here.

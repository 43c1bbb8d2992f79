"""The app: the command line, what each subcommand does, the pipeline of stages (plan, data, train,
evaluate, report), comparisons of several trainers and seeds, the run's frozen spec and crash logs.
The top floor: may import everything below it; nothing imports it.
"""

from pipeline_cli.app import main

main()
